"""One contract, every backend: numpy, FAISS (flat, HNSW, IVF), milvus-lite and a real Milvus server
(FLAT and HNSW, started once per session by tests/conftest.py) run the same tests.

Exact backends (numpy, faiss:flat, milvus FLAT, the server's FLAT) must return the numpy ranking exactly;
the approximate ones must find it with high recall on a small gallery."""

from __future__ import annotations

import numpy as np
import pytest

from cbir.core.filters import label_mask
from cbir.stores import open_store

N, DIM = 300, 16
TYPES = ("dress", "shoes", "shirt", "pants", "shorts")
COLOURS = ("black", "blue", 'red "quoted"', "white\\slash", "grün")

EXACT = ["numpy", "faiss:flat", "milvus", "milvus-server"]
APPROX = ["faiss:hnsw?ef_search=256", "faiss:ivf?nlist=8&nprobe=8", "milvus-server:hnsw"]
SERVER_OPTIONS = {"milvus-server": {}, "milvus-server:hnsw": {"index": "HNSW", "M": "16", "efConstruction": "200", "ef": "128"}}


def uri_for(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    if backend.startswith("faiss"):
        pytest.importorskip("faiss")
    if backend == "milvus":
        pytest.importorskip("pymilvus")
        pytest.importorskip("milvus_lite")
        return f"milvus:{tmp_path_factory.mktemp('milvus') / 'contract.db'}"
    if backend in SERVER_OPTIONS:  # one server per session; a collection prefix per store
        return request.getfixturevalue("milvus_server").uri(**SERVER_OPTIONS[backend])
    return backend


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    labels = {
        "type": np.array([TYPES[i % 5] for i in range(N)], dtype=object),
        "colour": np.array([COLOURS[(i // 5) % 5] for i in range(N)], dtype=object),
    }
    labels["label"] = np.array([f"{c}_{t}" for c, t in zip(labels["colour"], labels["type"])], dtype=object)
    ids = np.arange(1000, 1000 + N)  # ids are not row numbers
    return ids, x, labels, rng.standard_normal((8, DIM)).astype(np.float32)


def reference(data, metric: str, q: np.ndarray, k: int, filters=None) -> np.ndarray:
    store = open_store("numpy", "ref", DIM, metric)
    ids, x, labels, _ = data
    store.upsert(ids, x, labels)
    return store.search(q, k, filters)[0]


_made: dict = {}


def make(backend: str, metric: str, data, tmp_path_factory, request) -> object:
    """One store per (backend, metric), filled once per module (milvus-lite is slow to open)."""
    key = (backend, metric)
    if key not in _made:
        uri = uri_for(backend, tmp_path_factory, request)
        store = open_store(uri, f"contract_{metric}", DIM, metric)
        ids, x, labels, _ = data
        for s in range(0, N, 128):  # several batches, as a streaming build writes them
            store.upsert(ids[s : s + 128], x[s : s + 128], {c: v[s : s + 128] for c, v in labels.items()})
        store.flush()
        _made[key] = store
    return _made[key]


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
@pytest.mark.parametrize("backend", EXACT)
def test_exact_backends_return_the_numpy_ranking(backend, metric, data, tmp_path_factory, request):
    store = make(backend, metric, data, tmp_path_factory, request)
    q = data[3]
    ids, scores = store.search(q, 10)
    assert ids.shape == scores.shape == (len(q), 10)
    np.testing.assert_array_equal(ids, reference(data, metric, q, 10))
    assert (np.diff(scores, axis=1) <= 1e-6).all()


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])  # ip: MIPS as L2 over augmented rows
@pytest.mark.parametrize("backend", APPROX)
def test_approximate_backends_find_most_of_the_exact_top_k(backend, metric, data, tmp_path_factory, request):
    store = make(backend, metric, data, tmp_path_factory, request)
    q = data[3]
    ids, scores = store.search(q, 10)
    truth = reference(data, metric, q, 10)
    if metric == "ip":  # scores are the true inner products, not distances of the augmented vectors
        x = dict(zip(data[0].tolist(), data[1]))
        np.testing.assert_allclose(scores, [[q[r] @ x[i] for i in row] for r, row in enumerate(ids)], rtol=1e-4, atol=1e-4)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
    assert recall >= 0.9


@pytest.mark.parametrize("backend", EXACT + APPROX)
def test_scores_follow_the_similarity_conventions(backend, data, tmp_path_factory, request):
    ids, x, labels, _ = data
    for metric, tol in (("cosine", 1e-4), ("l2", 5e-3)):  # l2: float32 cancellation in |q|^2 + |g|^2 - 2 q.g
        store = make(backend, metric, data, tmp_path_factory, request)
        got_ids, sc = store.search(x[5], 1)
        assert got_ids[0, 0] == ids[5] and sc[0, 0] == pytest.approx(1.0, abs=tol)


@pytest.mark.parametrize("backend", EXACT + APPROX)
def test_filters_are_applied_before_top_k(backend, data, tmp_path_factory, request):
    store = make(backend, "cosine", data, tmp_path_factory, request)
    ids, x, labels, q = data
    filters = {"type": ["dress", "shirt"], "colour": ['red "quoted"', "white\\slash"]}
    got, sc = store.search(q, 10, filters)
    allowed = set(ids[label_mask(labels, filters)])
    assert len(allowed) == 48
    assert (got >= 0).all() and set(got.ravel()) <= allowed
    if backend in EXACT:
        np.testing.assert_array_equal(got, reference(data, "cosine", q, 10, filters))
    got, sc = store.search(q, 10, {"colour": ["grün"], "type": ["pants"]})  # 12 rows qualify
    assert set(got[got >= 0].ravel()) <= set(ids[label_mask(labels, {"colour": ["grün"], "type": ["pants"]})])
    got, sc = store.search(q, 10, {"type": ["no such type"]})
    assert (got == -1).all() and np.isneginf(sc).all()
    with pytest.raises(ValueError, match="label columns"):
        store.search(q, 10, {"size": ["XL"]})


@pytest.mark.parametrize("metric", ["cosine", "ip"])
@pytest.mark.parametrize("backend", ["faiss:hnsw", "faiss:ivf?nlist=8&nprobe=1"])
def test_a_filter_far_from_the_query_still_gets_the_exact_top_k(backend, metric, tmp_path_factory, request):
    """Types tied to the vectors (as on real photos): a query from one cluster filtered to another is where a
    graph or cell search runs out of allowed rows; the store then scans the allowed rows exactly."""
    rng = np.random.default_rng(1)
    centres = 6.0 * rng.standard_normal((5, DIM)).astype(np.float32)
    lab = np.repeat(np.arange(5), 200)
    x = centres[lab] + rng.standard_normal((len(lab), DIM)).astype(np.float32)
    types = np.array(TYPES, dtype=object)[lab]
    labels = {"type": types, "colour": types, "label": types}
    store = open_store(uri_for(backend, tmp_path_factory, request), f"far_{metric}", DIM, metric)
    store.upsert(np.arange(len(x)), x, labels)
    ref = open_store("numpy", "far_ref", DIM, metric)
    ref.upsert(np.arange(len(x)), x, labels)
    q = x[lab == 0][:5] + 0.1
    got, _ = store.search(q, 10, {"type": ["shorts"]})
    np.testing.assert_array_equal(got, ref.search(q, 10, {"type": ["shorts"]})[0])


@pytest.mark.parametrize("backend", EXACT + APPROX)
def test_get_count_ids_and_fewer_rows_than_k(backend, data, tmp_path_factory, request):
    store = make(backend, "l2", data, tmp_path_factory, request)
    ids, x, labels, q = data
    assert store.count() == N
    assert sorted(store.ids().tolist()) == ids.tolist()
    np.testing.assert_allclose(store.get([ids[7], ids[2]]), x[[7, 2]], rtol=1e-6)
    with pytest.raises(KeyError):
        store.get([5])
    got, sc = store.search(q[0], 10, {"label": [labels["label"][0]]})
    n_ok = int((labels["label"] == labels["label"][0]).sum())
    assert (got[0, :n_ok] >= 0).all() and (got[0, n_ok:] == -1).all()


@pytest.mark.parametrize("backend", EXACT + APPROX)
def test_upsert_replaces_and_delete_removes(backend, data, tmp_path_factory, request):
    uri = uri_for(backend, tmp_path_factory, request)
    ids, x, labels, _ = data
    store = open_store(uri, "mutate", DIM, "l2")
    store.upsert(ids[:50], x[:50], {c: v[:50] for c, v in labels.items()})
    moved = x[49] + 100.0  # far from everything
    one = {c: v[:1] for c, v in labels.items()}
    store.upsert(ids[:1], moved[None, :], one)
    store.flush()
    assert store.count() == 50
    np.testing.assert_allclose(store.get([ids[0]]), moved[None, :], rtol=1e-6)
    got, _ = store.search(moved, 1)
    assert got[0, 0] == ids[0]
    store.delete([ids[0], ids[1], 999_999])
    store.flush()
    assert store.count() == 48 and ids[0] not in store.ids()
    got, _ = store.search(x[:5], 48)
    assert not {ids[0], ids[1]} & set(got.ravel())
    with pytest.raises(KeyError):
        store.get([ids[1]])


@pytest.mark.parametrize("backend", EXACT + APPROX)
def test_bad_input_is_a_clear_error(backend, data, tmp_path_factory, request):
    store = make(backend, "ip", data, tmp_path_factory, request)
    ids, x, labels, _ = data
    with pytest.raises(ValueError, match="columns"):
        store.search(np.zeros(DIM + 1, np.float32), 5)
    with pytest.raises(ValueError, match="vectors of 16 columns"):
        store.upsert(ids[:2], x[:2, :4], {c: v[:2] for c, v in labels.items()})
    with pytest.raises(ValueError, match="label column"):
        store.upsert(ids[:2], x[:2], {"type": labels["type"][:2]})
