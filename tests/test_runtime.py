"""Runtimes: ONNX Runtime and OpenVINO reproduce torch (checked at export/compile, cached by weights); torch is the
fallback."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

import cbir.embed.runtime as runtime
from cbir.embed.backbones import create_model
from cbir.embed.extractor import FeatureExtractor
from cbir.embed.runtime import OnnxRuntime, OpenVinoRuntime, RuntimeMismatchError, TorchRuntime, check_batch, make_runtime

TINY = "test_resnet.r160_in1k"
CC0 = Path(__file__).parent / "data" / "cc0"
SIZE = (3, 64, 64)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CBIR_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for the module's real-weights tests: Lite2 is exported to ONNX once, not once per test."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CBIR_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def tiny():
    return create_model(TINY, "random", seed=0)[0].eval()


def test_onnx_matches_torch_and_is_exported_once(cache, tiny):
    cpu = torch.device("cpu")
    onnx = make_runtime("onnx", tiny, cpu, "tiny-abc", SIZE, threads=1)
    assert isinstance(onnx, OnnxRuntime) and onnx.path == cache / "onnx" / "tiny-abc.onnx"
    x = check_batch(SIZE, n=3, seed=5)
    np.testing.assert_allclose(onnx(x), TorchRuntime(tiny, cpu)(x), atol=1e-4)
    stamp = onnx.path.stat().st_mtime_ns
    make_runtime("onnx", tiny, cpu, "tiny-abc", SIZE)
    assert onnx.path.stat().st_mtime_ns == stamp  # reused, not exported again
    assert not list((cache / "onnx").glob("*.part"))


def test_export_mismatch_is_an_error_and_leaves_no_file(cache, tiny, monkeypatch):
    monkeypatch.setattr(runtime, "ONNX_TOLERANCE", -1.0)  # any difference, even 0, is now "too large"
    with pytest.raises(RuntimeMismatchError, match="differs from torch"):
        make_runtime("onnx", tiny, torch.device("cpu"), "tiny-bad", SIZE)
    assert not list((cache / "onnx").iterdir())
    # auto falls back to torch when the export does not check out
    assert isinstance(make_runtime("auto", tiny, torch.device("cpu"), "tiny-bad", SIZE), TorchRuntime)


def test_auto_runs_random_init_on_torch_and_names_are_checked(tiny):
    assert isinstance(make_runtime("auto", tiny, torch.device("cpu"), None, SIZE), TorchRuntime)
    with pytest.raises(ValueError, match="random-init"):
        make_runtime("onnx", tiny, torch.device("cpu"), None, SIZE)
    with pytest.raises(ValueError, match="unknown runtime"):
        make_runtime("tensorrt", tiny, torch.device("cpu"), None, SIZE)


def test_openvino_matches_torch_for_any_batch_size_and_threads(cache, tiny):
    cpu = torch.device("cpu")
    ov = make_runtime("openvino", tiny, cpu, "tiny-ov", SIZE, threads=2)
    assert isinstance(ov, OpenVinoRuntime) and ov.path == cache / "onnx" / "tiny-ov.onnx"
    ref = TorchRuntime(tiny, cpu)
    for n in (1, 3, 8, 13, 32):  # single, short, bulk, a padded bulk remainder
        x = check_batch(SIZE, n=n, seed=n)
        np.testing.assert_allclose(ov(x), ref(x), atol=1e-4)
    assert len(ov._compiled) <= 6  # short batches are padded to a few static shapes, not compiled one by one
    x = check_batch(SIZE, n=4, seed=9)
    with ThreadPoolExecutor(4) as pool:  # concurrent app queries each get their own infer request
        outs = list(pool.map(lambda i: ov(x[i : i + 1]), [0, 1, 2, 3] * 3))
    np.testing.assert_allclose(np.concatenate(outs), np.concatenate([ref(x)] * 3), atol=1e-4)
    assert len(ov._free["LATENCY", 1]) <= 4  # requests are pooled: no more than calls that ran at once


def test_openvino_mismatch_is_an_error_and_auto_prefers_the_fastest_installed(cache, tiny, monkeypatch):
    cpu = torch.device("cpu")
    make_runtime("onnx", tiny, cpu, "tiny-ov", SIZE)  # a good export on disk
    monkeypatch.setattr(runtime, "ONNX_TOLERANCE", -1.0)
    with pytest.raises(RuntimeMismatchError, match="openvino runtime differs from torch"):
        make_runtime("openvino", tiny, cpu, "tiny-ov", SIZE)
    monkeypatch.setattr(runtime, "ONNX_TOLERANCE", 1e-4)
    assert isinstance(make_runtime("auto", tiny, cpu, "tiny-ov", SIZE), OpenVinoRuntime)
    monkeypatch.setattr(runtime, "AUTO_ORDER", (("openvino", lambda: False), ("onnx", runtime.onnx_available)))
    assert isinstance(make_runtime("auto", tiny, cpu, "tiny-ov", SIZE), OnnxRuntime)  # OpenVINO not installed


@pytest.mark.parametrize("name", ["onnx", "openvino"])
def test_lite2_fast_runtime_embeddings_equal_torch_on_real_photos(shared_cache, name):
    fast = FeatureExtractor(weights="pretrained", device="cpu", runtime=name)
    ref = FeatureExtractor(weights="pretrained", device="cpu", runtime="torch")
    photos = [CC0 / "tshirt.jpg", CC0 / "shoes.jpg", CC0 / "dress.jpg"]
    assert fast.runtime.name == name and fast.spec == ref.spec  # the runtime does not change the embedding spec
    np.testing.assert_allclose(fast.embed_images(photos), ref.embed_images(photos), atol=1e-4)
    np.testing.assert_allclose(fast.embed_images(photos * 3, batch_size=9), ref.embed_images(photos * 3), atol=1e-4)


def test_limit_threads_sizes_torch_and_the_blas_pool():
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from cbir.embed.runtime import limit_threads

    before = torch.get_num_threads()
    with threadpool_limits(None):  # put numpy's BLAS pool back as it was afterwards
        try:
            limit_threads(1)
            blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
            assert blas and set(blas) == {1}
            assert torch.get_num_threads() == 1
        finally:
            torch.set_num_threads(before)
