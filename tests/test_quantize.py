"""int8 quantisation: made once per backbone and recipe, checked against torch, and part of the embedding spec."""

import sys

import numpy as np
import pytest
import torch

import cbir.embed.quantize as quantize
import cbir.search.loading as search
from cbir.embed.backbones import create_model, file_sha256
from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec
from cbir.embed.extractor import FeatureExtractor
from cbir.embed.preprocess import CentreCropTransform
from cbir.embed.quantize import Quantization, quantized_path, quantized_runtime
from cbir.gallery.demo import calibration_photos
from cbir.embed.runtime import RuntimeMismatchError

pytest.importorskip("nncf")
TINY = "test_resnet.r160_in1k"
SIZE = (3, 64, 64)
CFG = {"input_size": SIZE, "interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3, "crop_pct": 0.875}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: the tiny model is exported and quantised once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def tiny(cache, monkeypatch):
    """A small random-init model and an 8-photo recipe (the real one calibrates on 290)."""
    monkeypatch.setenv("CBIR_CACHE", str(cache))
    monkeypatch.setitem(quantize.QUANTIZATIONS, "int8", Quantization("int8", calibration=8))
    return create_model(TINY, "random", seed=0)[0].eval()


def make(model, **kw):
    return quantized_runtime(model, torch.device("cpu"), "tiny-abc", SIZE, CentreCropTransform(CFG), "int8", threads=1,
                             calibration=calibration_photos, **kw)


def test_int8_model_is_made_once_checked_and_named_by_its_sha256(tiny):
    runtime, sha = make(tiny)
    path = quantized_path("tiny-abc", quantize.QUANTIZATIONS["int8"])
    assert path.is_file() and sha == file_sha256(path.with_suffix(".bin")) and runtime.name == "openvino (int8)"
    x = torch.stack([CentreCropTransform(CFG)(im) for im in calibration_photos(4)])
    with torch.inference_mode():
        expected = tiny(x).numpy()
    got = runtime(x)
    assert got.shape == expected.shape and not np.allclose(got, expected, atol=1e-4)  # really quantised
    assert quantize.mean_cosine(got, expected) > 0.95
    stamp = path.stat().st_mtime_ns
    assert make(tiny)[1] == sha and path.stat().st_mtime_ns == stamp  # reused, not quantised again


def test_a_model_that_strays_from_torch_is_an_error(tiny, monkeypatch):
    """Checked at every load, not only when quantising (same recipe tag: the cached model is reused)."""
    monkeypatch.setitem(quantize.QUANTIZATIONS, "int8", Quantization("int8", calibration=8, min_cosine=1.01))
    with pytest.raises(RuntimeMismatchError, match="stray from the float model"):
        make(tiny)


def test_missing_nncf_is_a_clear_error(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("CBIR_CACHE", str(tmp_path))  # nothing cached: it would have to quantise
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(ValueError, match="pip install nncf"):
        make(tiny)


def test_unknown_recipe_and_unsupported_setups_are_refused(tiny):
    with pytest.raises(ValueError, match="unknown quantization"):
        quantize.get_quantization("int4")
    with pytest.raises(ValueError, match="openvino runtime"):
        FeatureExtractor(TINY, "random", device="cpu", quantization="int8")
    with pytest.raises(ValueError, match="openvino runtime"):
        FeatureExtractor(TINY, "pretrained", device="cpu", runtime="torch", quantization="int8")


def test_spec_keeps_float_and_int8_galleries_apart():
    base = dict(model="m", weights="pretrained", dim=8, weights_sha256="a" * 64)
    old = EmbeddingSpec.from_dict(base)  # a gallery saved before quantisation existed is float
    assert old.quantization == "" and "quantized" not in old.describe()
    int8 = EmbeddingSpec(**base, quantization="int8", quantized_sha256="b" * 64)
    assert "int8-quantized" in int8.describe()
    int8.check_compatible(EmbeddingSpec.from_dict(int8.to_dict()))
    with pytest.raises(BackboneMismatchError, match="quantization int8 vs none"):
        int8.check_compatible(old)
    int8.check_compatible(old, allow_weights_mismatch=True)  # --random-weights smoke runs query any gallery
    with pytest.raises(BackboneMismatchError, match="quantized model sha256"):
        int8.check_compatible(EmbeddingSpec(**base, quantization="int8", quantized_sha256="c" * 64))


def test_queries_of_an_int8_gallery_are_embedded_int8(monkeypatch):
    seen = {}
    monkeypatch.setattr(search, "FeatureExtractor", lambda *a, **kw: seen.update(kw) or "extractor")
    spec = EmbeddingSpec(model="m", weights="pretrained", dim=8, quantization="int8", quantized_sha256="b" * 64)
    assert search.extractor_for(spec, None, False, "cpu", "auto") == ("extractor", False)
    assert seen["quantization"] == "int8"
