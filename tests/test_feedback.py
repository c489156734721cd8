import numpy as np
import pytest

from cbir.core.rows import check_indices
from cbir.search.feedback import rocchio


def test_no_feedback_keeps_the_query():
    q = np.array([3.0, 4.0], np.float32)
    np.testing.assert_allclose(rocchio(q, np.empty((0, 2)), np.empty((0, 2))), q)


def test_query_moves_towards_positives_and_away_from_negatives_at_its_own_length():
    q = np.array([1.0, 0.0, 0.0], np.float32)
    pos = np.array([[0.0, 1.0, 0.0], [0.0, 3.0, 0.0]], np.float32)
    neg = np.array([[0.0, 0.0, 2.0]], np.float32)
    r = rocchio(q, pos, neg)
    expected = np.array([1.0, 0.75 * 2.0, -0.15 * 2.0])
    np.testing.assert_allclose(r, expected / np.linalg.norm(expected), rtol=1e-6)
    assert np.linalg.norm(r) == pytest.approx(1.0)
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    assert cos(r, pos[0]) > cos(q, pos[0]) and cos(r, neg[0]) < cos(q, neg[0])


def test_check_indices():
    assert check_indices([0, 2.0, 4], 5, "positives").tolist() == [0, 2, 4]
    assert check_indices(None, 5, "positives").size == 0
    for bad in ([5], [-1], [1.5], ["x"]):
        with pytest.raises(ValueError, match="negatives must be gallery indices 0..4"):
            check_indices(bad, 5, "negatives")


def test_batch_matches_single_queries():
    from cbir.search.feedback import rocchio_rows

    rng = np.random.default_rng(0)
    q, pos, neg = rng.normal(size=(2, 4)), rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
    rows = rocchio_rows(q, np.stack([pos.mean(0), np.zeros(4)]), np.stack([neg.mean(0), neg.mean(0)]))
    np.testing.assert_allclose(rows[0], rocchio(q[0], pos, neg), rtol=1e-5)
    np.testing.assert_allclose(rows[1], rocchio(q[1], np.empty((0, 4)), neg), rtol=1e-5)
