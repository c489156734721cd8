import numpy as np
import pytest

from cbir.index import EmbeddingIndex
from cbir.similarity.registry import get_method, list_methods


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(0).random((50, 16)).astype(np.float32)


def test_registry_has_the_reference_methods_and_attribute():
    assert list_methods()[:4] == ["cosine", "euclidean", "logreg", "forest"]
    assert "attribute" in list_methods() and get_method("attribute").learned
    assert get_method("logreg").learned and not get_method("cosine").learned
    with pytest.raises(ValueError, match="available: cosine"):
        get_method("jaccard")


@pytest.mark.parametrize("name", ["cosine", "euclidean"])
def test_unlearned_scores_match_a_naive_loop(vectors, name):
    index = EmbeddingIndex(vectors)
    q = vectors[:3] + 0.01
    got = get_method(name).score(q, index)
    assert got.shape == (3, 50)
    for i, qi in enumerate(q):
        for j, g in enumerate(vectors):
            if name == "cosine":
                want = qi @ g / (np.linalg.norm(qi) * np.linalg.norm(g))
            else:
                want = 1.0 / (1.0 + np.linalg.norm(qi - g))
            assert abs(got[i, j] - want) < 1e-5


@pytest.mark.parametrize("name", ["cosine", "euclidean"])
def test_identical_vector_is_the_top_score(vectors, name):
    index = EmbeddingIndex(vectors)
    scores = get_method(name).score(vectors[7], index)
    assert scores.argmax() == 7
    assert scores[0, 7] == pytest.approx(1.0, abs=1e-5)
    assert np.all(scores <= 1.0 + 1e-5)


@pytest.mark.parametrize("name", ["cosine", "euclidean"])
def test_pair_scores_equal_the_matrix_diagonal(vectors, name):
    m = get_method(name)
    a, b = vectors[:10], vectors[10:20]
    np.testing.assert_allclose(m.score_pairs(a, b), np.diag(m.score(a, EmbeddingIndex(b))), rtol=1e-5, atol=1e-6)


def test_euclidean_orders_by_distance():
    g = np.array([[0, 0], [1, 0], [3, 0]], dtype=np.float32)
    s = get_method("euclidean").score(np.array([0.9, 0.0]), EmbeddingIndex(g))[0]
    assert s.argsort()[::-1].tolist() == [1, 0, 2]
    assert s[1] == pytest.approx(1 / 1.1, rel=1e-5)


def test_learned_methods_need_classifiers(vectors):
    with pytest.raises(ValueError, match="load classifiers"):
        get_method("forest").score(vectors[0], EmbeddingIndex(vectors))


def test_resolve_method_by_name_or_label():
    from cbir.similarity.registry import resolve_method

    assert resolve_method("Cosine similarity") == "cosine"
    assert resolve_method(" LOGREG ") == "logreg"
    assert resolve_method("Random forest", ["cosine", "forest"]) == "forest"
    with pytest.raises(ValueError, match="Unknown or unavailable method 'forest'"):
        resolve_method("forest", ["cosine", "euclidean"])
