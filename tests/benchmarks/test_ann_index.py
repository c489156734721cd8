"""Approximate search (FAISS HNSW / IVF) against exact cbir.similarity.registry search."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("faiss")

from benchmarks.ann_index import ApproximateIndex, import_faiss, recall_at_k  # noqa: E402
from cbir.index import EmbeddingIndex, top_k  # noqa: E402
from cbir.similarity.registry import get_method  # noqa: E402


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((2000, 32), dtype=np.float32), rng.standard_normal((100, 32), dtype=np.float32)


def _exact(metric: str, x: np.ndarray, q: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    scores = get_method(metric).score(q, EmbeddingIndex(x))
    return top_k(scores, k)[0], scores


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_hnsw_recall_at_10_against_exact(data, metric) -> None:
    x, q = data
    ann = ApproximateIndex("hnsw").build(x, metric)
    idx, scores = ann.search(q, 10)
    truth, exact_scores = _exact(metric, x, q)
    assert idx.shape == scores.shape == (len(q), 10) and idx.dtype == np.int64 and scores.dtype == np.float32
    assert recall_at_k(idx, truth) >= 0.9
    # same score convention as the exact methods, best first
    np.testing.assert_allclose(scores, np.take_along_axis(exact_scores, idx, axis=1), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    assert len(ann) == len(x) and ann.dim == 32 and ann.nbytes > x.nbytes


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_ivf_scanning_every_list_is_exact(data, metric) -> None:
    x, q = data
    ann = ApproximateIndex("ivf", nlist=16, nprobe=16).build(x, metric)
    assert recall_at_k(ann.search(q, 10)[0], _exact(metric, x, q)[0]) == 1.0
    ann.nprobe = 1
    assert ann.index.nprobe == 1


def test_ef_search_trades_recall(data) -> None:
    x, q = data
    ann = ApproximateIndex("hnsw", m=8, ef_construction=20, ef_search=10).build(x, "euclidean")
    truth = _exact("euclidean", x, q)[0]
    low = recall_at_k(ann.search(q, 10)[0], truth)
    ann.ef_search = 256
    assert ann.index.hnsw.efSearch == 256
    assert recall_at_k(ann.search(q, 10)[0], truth) >= low


def test_single_query_and_k_beyond_gallery() -> None:
    x = np.random.default_rng(1).standard_normal((5, 8), dtype=np.float32)
    ann = ApproximateIndex().build(x, "cosine")
    idx, scores = ann.search(x[2], 10)
    assert idx.shape == (1, 5) and idx[0, 0] == 2 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_recall_at_k() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert recall_at_k(exact, exact) == 1.0
    assert recall_at_k(exact[:, ::-1], exact) == 1.0  # order does not matter
    assert recall_at_k(exact + 100, exact) == 0.0
    assert recall_at_k(np.array([[1, 2, -1, -1], [5, 9, 9, 9]]), exact) == pytest.approx((2 + 1) / 8)
    with pytest.raises(ValueError, match="rows"):
        recall_at_k(exact[:1], exact)


def test_errors_are_clear(data, monkeypatch) -> None:
    x, _ = data
    with pytest.raises(ValueError, match="supports"):
        ApproximateIndex().build(x, "logreg")
    with pytest.raises(ValueError, match="kind"):
        ApproximateIndex("lsh")
    with pytest.raises(RuntimeError, match="build"):
        ApproximateIndex().search(x[:1], 3)
    ann = ApproximateIndex().build(x[:50], "euclidean")
    with pytest.raises(ValueError, match="32 columns"):
        ann.search(np.zeros((1, 31), np.float32), 3)
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss-cpu were not installed
    with pytest.raises(ImportError, match="faiss-cpu"):
        import_faiss()
