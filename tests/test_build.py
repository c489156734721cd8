"""Streaming builds: chunked shards and store writes, resumed after a crash without re-embedding."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cbir.gallery.build import build_gallery_streaming, partial_dir
from cbir.gallery.dataset import scan_image_folder
from cbir.stores import STORED_METHODS, GalleryStore
from cbir.stores.methods import attribute_gallery_vectors

ROOT = Path(__file__).resolve().parent.parent


class Crashing:
    """An embedder that fails after `ok` calls (a crash mid-build) and counts the images it embedded."""

    def __init__(self, inner, ok: int = 10**9) -> None:
        self.inner, self.spec, self.ok, self.embedded = inner, inner.spec, ok, 0

    def embed_files(self, sources, **kw):
        if self.ok == 0:
            raise RuntimeError("simulated crash")
        self.ok -= 1
        self.embedded += len(sources)
        return self.inner.embed_files(sources, **kw)


def test_crash_then_resume_gives_the_same_gallery_and_store(image_folder, extractor, gallery, training_run, tmp_path):
    records = scan_image_folder(image_folder)
    clf = training_run.classifiers  # every stored method, attribute (embedding + colour descriptor) included
    store = GalleryStore("numpy", extractor.spec.dim, list(STORED_METHODS), clf)
    first = Crashing(extractor, ok=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_gallery_streaming(records, first, tmp_path / "g", store, chunk=20, batch_size=16)
    assert partial_dir(tmp_path / "g").is_dir() and first.embedded == 40
    assert store.count() == 40

    second = Crashing(extractor)
    built, errors = build_gallery_streaming(records, second, tmp_path / "g", store, chunk=20, batch_size=16, log=lambda m: None)
    assert second.embedded == len(records) - 40  # the two finished chunks were not embedded again
    assert not errors and not partial_dir(tmp_path / "g").exists()
    assert len(built) == len(gallery) and list(built.labels) == list(gallery.labels)
    np.testing.assert_allclose(built.embeddings, gallery.embeddings, rtol=1e-5, atol=1e-6)
    assert store.count() == len(gallery)
    np.testing.assert_allclose(store.embeddings([0, 95]), gallery.embeddings[[0, 95]], rtol=1e-5, atol=1e-6)
    want = attribute_gallery_vectors(gallery.embeddings[[0, 95]], clf, gallery.descriptors[[0, 95]])
    np.testing.assert_allclose(store.spaces["attribute"].get([0, 95]), want, rtol=1e-4, atol=1e-6)  # colour went in


def test_changed_settings_refuse_to_resume(image_folder, extractor, tmp_path):
    records = scan_image_folder(image_folder)
    with pytest.raises(RuntimeError):
        build_gallery_streaming(records, Crashing(extractor, ok=0), tmp_path / "g", chunk=20)
    with pytest.raises(ValueError, match="other settings"):
        build_gallery_streaming(records, extractor, tmp_path / "g", chunk=30)


def test_build_index_writes_a_milvus_store_the_app_reuses(image_folder, training_run, tmp_path, capsys):
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    db = tmp_path / "g.db"
    spec = importlib.util.spec_from_file_location("build_index", ROOT / "scripts" / "build_index.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)  # in-process: no second torch import
    argv = [str(image_folder), "--out", str(tmp_path / "g"), "--model", "test_resnet.r160_in1k", "--random-weights",
            "--chunk", "40", "--store", f"milvus:{db}"]
    assert script.main(argv) == 0
    assert f"store milvus:{db} holds 96 rows" in capsys.readouterr().out
    from cbir.gallery.dataset import Gallery
    from cbir.stores import open_gallery_store

    g = Gallery.load(tmp_path / "g")
    store = open_gallery_store(f"milvus:{db}", g, None, ["cosine", "euclidean"], progress=False)
    ids, scores = store.search("cosine", g.embeddings[[4]], 3)
    assert ids[0, 0] == 4 and scores[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert "gallery_attribute" not in store.spaces["cosine"].client.list_collections()  # no classifiers at build time
    store.close()
    with_clf = open_gallery_store(f"milvus:{db}", g, training_run.classifiers, ["cosine", "attribute"], progress=False)
    assert with_clf.spaces["attribute"].count() == len(g)  # the app's first start with classifiers adds it
    ids, scores = with_clf.search("attribute", g.embeddings[[4]], 3, task="both", descriptors=g.descriptors[[4]])
    assert ids[0, 0] == 4 and scores[0, 0] == pytest.approx(1.0, abs=1e-4)  # Bhattacharyya: 1 against itself


def test_a_datasets_source_is_streamed_chunk_by_chunk(gallery_dir, extractor, gallery, tmp_path):
    from cbir.gallery.build import dataset_chunks

    chunks = dataset_chunks(gallery_dir, 40, partial_dir(tmp_path / "g"))
    built, errors = build_gallery_streaming(chunks, extractor, tmp_path / "g", chunk=40, batch_size=16, log=lambda m: None)
    assert not errors and list(built.labels) == list(gallery.labels) and list(built.hashes) == list(gallery.hashes)
    np.testing.assert_allclose(built.embeddings, gallery.embeddings, rtol=1e-5, atol=1e-6)
