"""Shared test fixtures: a generated `colour_type` image folder, a tiny random-init timm model,
the gallery embedded with it and classifiers trained on it. No network, no shared/ data."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test that reaches for the Hub fails fast instead of retrying
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
from ci_skips import pytest_configure, pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402,F401

from cbir.gallery.dataset import Gallery, build_gallery, scan_image_folder  # noqa: E402
from cbir.embed.extractor import FeatureExtractor  # noqa: E402
from cbir.gallery.synthetic import write_image_folder  # noqa: E402
from cbir.similarity.training import TrainingRun, train  # noqa: E402

TINY_MODEL = "test_resnet.r160_in1k"  # timm's own test network: 96-d features, builds in milliseconds
PER_CLASS = 4
TEST_PAIRS = 200


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("apparel") / "images"
    write_image_folder(root, per_class=PER_CLASS, size=64, seed=0)
    return root


@pytest.fixture(scope="session")
def extractor() -> FeatureExtractor:
    return FeatureExtractor(TINY_MODEL, weights="random", device="cpu", seed=0)


@pytest.fixture(scope="session")
def gallery(image_folder, extractor) -> Gallery:
    g, errors = build_gallery(scan_image_folder(image_folder), extractor, batch_size=16, progress=False)
    assert not errors
    return g


@pytest.fixture(scope="session")
def gallery_dir(gallery, tmp_path_factory: pytest.TempPathFactory):
    return gallery.save(tmp_path_factory.mktemp("gallery") / "gallery")


@pytest.fixture(scope="session")
def training_run(gallery, extractor) -> TrainingRun:
    return train(gallery, n_pairs=TEST_PAIRS, seed=0, progress=False, extractor=extractor)  # with the learned whitening


@pytest.fixture(scope="session")
def classifier_dir(training_run, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("classifiers") / "classifiers"
    training_run.save(folder)
    return folder


# -- transformers encoders (hf: backbones): tiny random-weight models saved to folders, loaded offline ----------


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory):
    from hf_tiny import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("hf") / "tiny-clip")


@pytest.fixture(scope="session")
def clip_extractor(clip_dir) -> FeatureExtractor:
    return FeatureExtractor(f"hf:{clip_dir}", device="cpu")


@pytest.fixture(scope="session")
def clip_gallery_dir(image_folder, clip_extractor, tmp_path_factory: pytest.TempPathFactory):
    g, errors = build_gallery(scan_image_folder(image_folder), clip_extractor, batch_size=16, progress=False)
    assert not errors
    return g.save(tmp_path_factory.mktemp("clip-gallery") / "gallery")


# -- a real Milvus standalone server (the `milvus` package's binary), once per session, only when a test asks ----


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("milvus")
    pytest.importorskip("pymilvus")
    from milvus_server import MilvusTestServer

    server = MilvusTestServer(tmp_path_factory.mktemp("milvus-server")).start()
    yield server
    server.stop()
