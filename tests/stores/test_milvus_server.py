"""A real Milvus standalone server (tests/milvus_server.py, one per session): HNSW recall against the exact
ranking, and the served app on `--store milvus://127.0.0.1:PORT` answering as the in-process search, giving a
clear error while the server is down and answering again once it is back."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from cbir.stores import open_store  # noqa: E402
from cbir.stores.base import StoreUnavailableError  # noqa: E402

pytest.importorskip("pymilvus")
from gradio_client import Client, handle_file  # noqa: E402

LABELS = ("label", "colour", "type")


def recall_at(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(got, truth)]))


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_hnsw_on_the_server_has_recall_at_10_of_95_percent(milvus_server, metric):
    rng = np.random.default_rng(3)
    n, dim = 4000, 32
    centres = 3.0 * rng.standard_normal((20, dim)).astype(np.float32)
    lab = rng.integers(0, 20, n)
    x = centres[lab] + rng.standard_normal((n, dim)).astype(np.float32)
    types = np.array([f"t{i % 4}" for i in lab], dtype=object)
    labels = {c: types for c in LABELS}
    store = open_store(milvus_server.uri(index="HNSW", M="16", efConstruction="200", ef="64"), "hnsw", dim, metric)
    ref = open_store("numpy", "ref", dim, metric)
    for s in range(0, n, 1000):
        store.upsert(np.arange(s, s + 1000), x[s : s + 1000], {c: v[s : s + 1000] for c, v in labels.items()})
    ref.upsert(np.arange(n), x, labels)
    store.flush()
    flushed = time.perf_counter()
    q = x[rng.choice(n, 50, replace=False)] + 0.3 * rng.standard_normal((50, dim)).astype(np.float32)
    for filters in (None, {"type": ["t1"]}):
        got, _ = store.search(q, 10, filters)
        truth, _ = ref.search(q, 10, filters)
        assert recall_at(got, truth) >= 0.95
        if filters:
            assert set(types[got[got >= 0]]) == {"t1"}

    # `consistency=Bounded` on the same collection skips the wait for the time tick; once its grace period (5 s by
    # default) has passed since the writes, it answers as the default (Session) store does
    same = store.collection.removesuffix("_hnsw")
    bounded = open_store(milvus_server.uri(collection=same, index="HNSW", ef="64", consistency="bounded"), "hnsw", dim, metric)
    assert bounded.consistency == "Bounded"
    time.sleep(max(0.0, 5.5 - (time.perf_counter() - flushed)))
    np.testing.assert_array_equal(bounded.search(q, 10)[0], store.search(q, 10)[0])


def _search(client: Client, path: str, index: int) -> list[int]:
    res = client.predict(handle_file(path), "cosine", "type", 5, index, api_name="/search")
    return [r["index"] for r in res["results"]]


def test_served_app_on_the_server_survives_an_outage(milvus_server, gallery_dir, classifier_dir, gallery):
    base = ["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--device", "cpu"]
    on_server = app.build_engine(app.parse_args(base + ["--store", milvus_server.uri()]))
    plain = app.build_engine(app.parse_args(base))
    assert on_server.store.count() == len(gallery)
    img = gallery.image(3)
    for method in ("cosine", "logreg", "attribute"):
        a = plain.search(img, method, "both", k=6, exclude=3, filters={"type": [str(gallery.types[3])]})
        b = on_server.search(img, method, "both", k=6, exclude=3, filters={"type": [str(gallery.types[3])]})
        assert [h.index for h in a] == [h.index for h in b] and len(b) > 0
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-3, atol=1e-5)
    demo = app.create_app(on_server)
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False, download_files=True)
        path, _, index = client.predict(api_name="/random")
        want = [h.index for h in plain.search(path, "cosine", "type", k=5, exclude=index)]
        assert _search(client, path, index) == want
        # a live edit is not flushed on a server (VectorStore.flush(edit=True)): the server's log must keep it
        edited = open_store(milvus_server.uri(), "edit", 8, "cosine")
        rows = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
        labels = {c: np.array(["a"] * 6, dtype=object) for c in LABELS}
        edited.upsert(np.arange(4), rows[:4], {c: v[:4] for c, v in labels.items()})
        edited.flush()
        edited.upsert(np.arange(4, 6), rows[4:], {c: v[4:] for c, v in labels.items()})
        edited.delete([1])
        edited.flush(edit=True)
        milvus_server.kill()  # a power cut, not a clean shutdown
        t0 = time.perf_counter()
        with pytest.raises(Exception, match="cannot be reached"):  # the app's message, not an internal error
            _search(client, path, index)
        assert time.perf_counter() - t0 < 30
        with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{milvus_server.port}"):
            on_server.store.search("cosine", gallery.embeddings[:1], 3)
        milvus_server.start()
        assert _search(client, path, index) == want  # the same app process, reconnected
        assert sorted(edited.ids().tolist()) == [0, 2, 3, 4, 5]  # the unflushed edit survived the crash
        np.testing.assert_allclose(edited.get([4, 5]), rows[4:], rtol=1e-6)
    finally:
        demo.close()
        if not milvus_server.running:
            milvus_server.start()  # later tests share the session's server
