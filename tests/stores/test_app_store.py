"""The app on `--store milvus:PATH` (and faiss): first start builds the file from the gallery, a
restart reuses it, and /search serves every method (attribute included, with filters) with the same
results as the in-process search."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from cbir.stores import GalleryStore, open_gallery_store  # noqa: E402

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
from gradio_client import Client, handle_file  # noqa: E402

METHODS = ["cosine", "euclidean", "logreg", "forest", "attribute"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return tmp_path_factory.mktemp("appstore") / "demo.db"


@pytest.fixture(scope="module")
def engines(gallery_dir, classifier_dir, db):
    base = ["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--device", "cpu"]
    assert not db.exists()
    on_milvus = app.build_engine(app.parse_args(base + ["--store", f"milvus:{db}"]))
    assert db.exists()
    plain = app.build_engine(app.parse_args(base))
    return plain, on_milvus


def test_first_start_builds_the_file_and_a_restart_reuses_it(engines, gallery, classifier_dir, db):
    plain, on_milvus = engines
    assert isinstance(on_milvus.store, GalleryStore) and plain.store is None
    assert on_milvus.store.count() == len(gallery)
    again = open_gallery_store(f"milvus:{db}", gallery, on_milvus.classifiers, METHODS)  # nothing left to write
    assert again.count() == len(gallery)


@pytest.mark.parametrize("task", ["type", "both"])
@pytest.mark.parametrize("method", METHODS)
def test_store_search_matches_in_process_search(engines, gallery, method, task):
    plain, on_milvus = engines
    img = gallery.image(7)
    a = plain.search(img, method, task, k=8, exclude=7)
    b = on_milvus.search(img, method, task, k=8, exclude=7)
    assert [h.index for h in a] == [h.index for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-3, atol=1e-5)


def test_attribute_on_faiss_flat_matches_in_process_search(engines, gallery_dir, classifier_dir, gallery):
    """`--store faiss:flat` (exact) serves the attribute method, filtered, as the in-process engine does."""
    pytest.importorskip("faiss")
    plain, _ = engines
    base = ["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--device", "cpu"]
    on_faiss = app.build_engine(app.parse_args(base + ["--store", "faiss:flat"]))
    assert "attribute" in on_faiss.available_methods()
    img, types = gallery.image(11), [str(gallery.types[11]), str(gallery.types[60])]
    for task in ("type", "colour", "both"):
        a = plain.search(img, "attribute", task, k=7, exclude=11, filters={"type": types})
        b = on_faiss.search(img, "attribute", task, k=7, exclude=11, filters={"type": types})
        assert [h.index for h in a] == [h.index for h in b] and all(h.type in types for h in b)
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-4, atol=1e-6)


def test_filters_reach_the_store(engines, gallery):
    _, on_milvus = engines
    hits = on_milvus.search_vector(gallery.embeddings[0], "cosine", k=5, filters={"type": [gallery.types[0]]})
    assert hits and all(h.type == gallery.types[0] for h in hits)


def test_served_app_on_milvus(engines, gallery):
    plain, on_milvus = engines
    demo = app.create_app(on_milvus)
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False, download_files=True)
        path, label, index = client.predict(api_name="/random")
        for method in METHODS:
            res = client.predict(handle_file(path), method, "both", 5, index, api_name="/search")
            assert len(res["results"]) == 5 and index not in [r["index"] for r in res["results"]]
        types = [str(gallery.types[index]), str(gallery.types[(index + 1) % len(gallery)])]
        for task in ("type", "colour", "both"):  # attribute with a filter: Milvus's answer is the in-process one
            res = client.predict(handle_file(path), "attribute", task, 6, index, types=types, dedup=False, api_name="/search")
            got = [r["index"] for r in res["results"]]
            want = plain.search(path, "attribute", task, k=6, exclude=index, filters={"type": types})
            assert got == [h.index for h in want] and len(got) == 6
            assert all(r["type"] in types for r in res["results"])
    finally:
        demo.close()


def test_bad_store_settings_are_clear(gallery_dir, tmp_path, gallery, training_run):
    with pytest.raises(ValueError, match="unknown store"):
        app.build_engine(app.parse_args(["--gallery", str(gallery_dir), "--store", "redis://x"]))
    other = tmp_path / "other.db"
    s = open_gallery_store(f"milvus:{other}", gallery, None, ["cosine"])
    s.add(np.array([0]), gallery.embeddings[[5]], {"label": ["x"], "colour": ["x"], "type": ["x"]})  # wrong row
    s.flush()
    with pytest.raises(ValueError, match="another gallery"):
        open_gallery_store(f"milvus:{other}", gallery, None, ["cosine"])
    assert app.main(["--gallery", str(gallery_dir), "--store", "milvus:"]) == 1
