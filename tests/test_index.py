import numpy as np
import pytest

from cbir.index import EmbeddingIndex, as_queries, l2_normalize, top_k


def test_top_k_sorted_and_matches_full_sort():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 200)).astype(np.float32)
    idx, sc = top_k(scores, 7)
    assert idx.shape == sc.shape == (5, 7)
    np.testing.assert_array_equal(idx, np.argsort(-scores, axis=1)[:, :7])
    assert np.all(np.diff(sc, axis=1) <= 0)


def test_top_k_excludes_the_query_row_and_clamps_k():
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.7]], dtype=np.float32)
    idx, _ = top_k(scores, 10, exclude=np.array([0, -1]))
    assert idx[0].tolist() == [1, 2]
    assert idx.shape == (2, 2)  # k clamped to what the excluded row can return
    idx, _ = top_k(scores, 10)
    assert idx[1].tolist() == [1, 2, 0]
    assert top_k(scores, 0)[0].shape == (2, 0)


def test_index_caches_derived_arrays():
    v = np.arange(12, dtype=np.float64).reshape(4, 3)
    index = EmbeddingIndex(v)
    assert index.vectors.dtype == np.float32 and index.dim == 3 and len(index) == 4
    assert index.inv_norms is index.inv_norms
    np.testing.assert_allclose(index.inv_norms[1:], 1.0 / np.linalg.norm(v[1:], axis=1), rtol=1e-6)
    assert index.inv_norms[0] > 0  # a zero vector stays finite
    np.testing.assert_allclose(index.sq_norms, (v**2).sum(1), rtol=1e-6)
    calls = []
    index.derived("x", lambda g: calls.append(1) or g.sum())
    index.derived("x", lambda g: calls.append(1) or g.sum())
    assert calls == [1]
    assert index.nbytes == v.size * 4 + index.inv_norms.nbytes + index.sq_norms.nbytes


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="2-D"):
        EmbeddingIndex(np.zeros(3))
    with pytest.raises(ValueError, match="4 columns"):
        as_queries(np.zeros((2, 3)), 4)
    assert as_queries(np.zeros(4), 4).shape == (1, 4)
    assert np.all(l2_normalize(np.zeros((1, 4))) == 0)
