from pathlib import Path

import numpy as np
import pytest
import torch

from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec

from cbir.embed.extractor import FeatureExtractor, WeightsUnavailableError, create_backbone
from cbir.embed.colour import colour_descriptor
from cbir.embed.extractor import _prefetch
from cbir.images import ImageError
from cbir.gallery.synthetic import garment_image

GOLDEN = Path(__file__).parent / "golden" / "test_resnet_r160_seed0.npy"
TINY = "test_resnet.r160_in1k"


def _golden_images():
    return [garment_image("red", "dress", 64, 0), garment_image("blue", "shoes", 64, 1)]


def test_golden_embedding(extractor):
    """Fixed seed, fixed tiny images -> the stored vectors (catches drift in init, preprocessing or pooling)."""
    expected = np.load(GOLDEN)
    got = extractor.embed_images(_golden_images())
    assert got.dtype == np.float32 and got.shape == expected.shape == (2, 96)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_random_init_is_seeded_and_does_not_touch_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = create_backbone(TINY, "random", seed=0)
    after = torch.rand(1)
    b, _ = create_backbone(TINY, "random", seed=0)
    c, _ = create_backbone(TINY, "random", seed=1)
    assert torch.equal(before, after)
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_vgg16_architecture_gives_4096_d_with_last_layer_removed():
    ext = FeatureExtractor("vgg16.tv_in1k", weights="random", device="cpu")
    vec = ext.embed_image(garment_image("black", "pants", 64, 0))
    assert vec.shape == (4096,) and vec.dtype == np.float32
    assert ext.spec.dim == 4096 and ext.spec.model == "vgg16.tv_in1k"
    assert ext.spec.data_config["input_size"] == [3, 224, 224]  # timm's own data config, not ours


def test_spec_records_model_weights_and_preprocessing(extractor, tmp_path):
    spec = extractor.spec
    assert (spec.model, spec.weights, spec.seed, spec.dim) == (TINY, "random", 0, 96)
    assert {"input_size", "mean", "std", "interpolation", "crop_pct"} <= set(spec.data_config)
    spec.save(tmp_path / "spec.json")
    assert EmbeddingSpec.load(tmp_path / "spec.json") == spec


def test_spec_mismatch_is_refused(extractor):
    spec = extractor.spec
    other = EmbeddingSpec.from_dict({**spec.to_dict(), "model": "resnet18", "dim": 512})
    with pytest.raises(BackboneMismatchError, match="model"):
        spec.check_compatible(other)
    reseeded = EmbeddingSpec.from_dict({**spec.to_dict(), "seed": 1})
    with pytest.raises(BackboneMismatchError, match="weights"):
        spec.check_compatible(reseeded)
    spec.check_compatible(reseeded, allow_weights_mismatch=True)
    resized = EmbeddingSpec.from_dict({**spec.to_dict(), "data_config": {**spec.data_config, "crop_pct": 1.0}})
    with pytest.raises(BackboneMismatchError, match="preprocessing"):
        spec.check_compatible(resized)


def test_local_weights_file_loads_through_timm(extractor, tmp_path):
    import timm

    full = timm.create_model(TINY, pretrained=False).state_dict()  # a checkpoint with its classifier head
    full.update(extractor.model.state_dict())
    torch.save(full, tmp_path / "weights.pth")
    ext = FeatureExtractor(TINY, weights=str(tmp_path / "weights.pth"), device="cpu", runtime="torch")
    assert ext.spec.weights == "pretrained" and ext.spec.weights_source == "file:weights.pth"
    img = garment_image("green", "shirt", 64, 0)
    np.testing.assert_array_equal(ext.embed_image(img), extractor.embed_image(img))


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="not found"):
        FeatureExtractor(TINY, weights=str(tmp_path / "nope.pth"))


def test_offline_pretrained_is_a_clear_error():
    # conftest sets HF_HUB_OFFLINE=1, so this fails fast instead of retrying the network
    with pytest.raises(WeightsUnavailableError, match="--random-weights"):
        create_backbone(TINY, "pretrained")


def test_batches_match_single_images(extractor):
    ims = [garment_image(c, "dress", 64, i) for i, c in enumerate(("red", "blue", "white"))]
    batched = extractor.embed_images(ims, batch_size=2)
    single = np.stack([extractor.embed_image(im) for im in ims])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


def test_embed_files_skips_unreadable_files(extractor, tmp_path):
    good = tmp_path / "a.png"
    garment_image("red", "dress", 64, 0).save(good)
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"not an image")
    vecs, kept, errors, _ = extractor.embed_files([good, bad, good], batch_size=2, progress=False)
    assert vecs.shape == (2, 96) and kept.tolist() == [0, 2]
    assert list(errors) == [1] and "Not an image" in errors[1]
    with pytest.raises(ImageError):
        extractor.embed_image(bad)


@pytest.mark.parametrize("workers", [0, 1])
def test_embed_files_describes_each_kept_image_from_the_same_decode(extractor, tmp_path, workers):
    paths = []
    for i, c in enumerate(("red", "blue", "white", "black", "green")):
        paths.append(tmp_path / f"{i}.png")
        garment_image(c, "shirt", 64, i).save(paths[-1])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 cut")
    sources = [paths[0], bad, *paths[1:]]
    got = extractor.embed_files(sources, batch_size=2, num_workers=workers, progress=False, describe=colour_descriptor)
    plain = extractor.embed_files(sources, batch_size=2, num_workers=workers, progress=False)
    assert got.kept.tolist() == [0, 2, 3, 4, 5] and list(got.errors) == [1] and plain.described is None
    np.testing.assert_array_equal(got.vectors, plain.vectors)
    np.testing.assert_allclose(got.described, np.stack([colour_descriptor(p) for p in paths]), atol=1e-7)


def test_prefetch_keeps_order_reraises_and_stops_with_the_consumer():
    produced = []

    def items(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise ValueError("decoder broke")
            produced.append(i)
            yield i

    assert list(_prefetch(items(7))) == list(range(7))
    with pytest.raises(ValueError, match="decoder broke"):
        list(_prefetch(items(7, fail_at=3)))
    produced.clear()
    it = _prefetch(items(10**6), depth=2)
    assert next(it) == 0
    it.close()  # the consumer stops early: the producer must stop too, a few items ahead at most
    assert len(produced) <= 5
