import numpy as np
import pytest

from cbir.similarity.attributes import PAIR_SCORES, AttributeClassifier
from cbir.embed.colour import ColourSpec
from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec
from cbir.index import EmbeddingIndex
from cbir.similarity.pairs import split_images
from cbir.similarity.registry import get_method


def test_attribute_kind_is_trained_per_task_on_images(training_run, gallery):
    for task in ("type", "colour"):
        clf = training_run.classifiers.get("attribute", task)
        assert isinstance(clf, AttributeClassifier)
        card = clf.card
        assert card["inputs"] == "embedding+colour" and card["colour"] == gallery.colour_spec.to_dict()
        assert card["classes"] == sorted(set(gallery.attribute(task)))
        assert card["train_images"] == len(training_run.split.train) and card["pair_score"] == "bhattacharyya"
        assert card["hyperparameters"]["C"] in card["hyperparameters"]["Cs"]


def test_gallery_scores_are_one_matrix_product_of_image_vectors(training_run, gallery):
    cs = training_run.classifiers
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    q, qd = gallery.embeddings[[0, 40]], gallery.descriptors[[0, 40]]
    clf = cs.get("attribute", "colour")
    p = clf.probabilities(gallery.embeddings, gallery.descriptors)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    v = clf.image_vectors(gallery.embeddings, gallery.descriptors)
    full = get_method("attribute").score(q, index, task="colour", classifiers=cs, query_descriptors=qd)
    np.testing.assert_allclose(full, v[[0, 40]] @ v.T, rtol=1e-5, atol=1e-6)
    n = len(gallery)
    pairs = clf.score_pairs(np.repeat(q[:1], n, 0), gallery.embeddings, (np.repeat(qd[:1], n, 0), gallery.descriptors))
    np.testing.assert_allclose(full[0], pairs, rtol=1e-5, atol=1e-6)
    both = get_method("attribute").score(q, index, task="both", classifiers=cs, query_descriptors=qd)
    np.testing.assert_allclose(both, cs.score("attribute", "type", q, index, qd) * full, rtol=1e-5, atol=1e-6)


def test_an_image_scores_one_against_itself_and_at_most_one_otherwise(training_run, gallery):
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    for task in ("type", "colour", "both"):
        s = get_method("attribute").score(
            gallery.embeddings, index, task=task, classifiers=training_run.classifiers, query_descriptors=gallery.descriptors
        )
        np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-5)
        assert s.max() <= 1.0 + 1e-5


def test_plain_inner_product_would_break_self_similarity():
    """Why the default pair score is Bhattacharyya: with p . q an uncertain image prefers a confident other one."""
    uncertain, confident = np.array([0.6, 0.4]), np.array([1.0, 0.0])
    dot, bc = PAIR_SCORES["dot"], PAIR_SCORES["bhattacharyya"]
    assert dot(uncertain) @ dot(confident) > dot(uncertain) @ dot(uncertain)
    assert bc(uncertain) @ bc(confident) < bc(uncertain) @ bc(uncertain) == pytest.approx(1.0)


def _toy(n: int = 300, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    attr = rng.integers(0, 3, n)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x[:, :3] += 3.0 * np.eye(3)[attr]
    return x, np.array(["a", "b", "c"])[attr]


def test_learns_an_attribute_from_embeddings_alone():
    x, attr = _toy()
    split = split_images(attr, test_fraction=0.3, seed=0)
    spec = EmbeddingSpec("toy", "random", x.shape[1], {}, seed=0)
    clf = AttributeClassifier.fit("attribute", "type", x, attr, split.train, spec)
    assert clf.card["inputs"] == "embedding" and clf.card["colour"] is None
    p = clf.probabilities(x[split.test])
    assert (np.array(clf.classes)[p.argmax(1)] == attr[split.test]).mean() > 0.9


def test_clear_errors(training_run, gallery):
    clf = training_run.classifiers.get("attribute", "type")
    with pytest.raises(ValueError, match="trained with colour descriptors"):
        clf.probabilities(gallery.embeddings[:2])
    x, attr = _toy()
    spec = EmbeddingSpec("toy", "random", x.shape[1], {}, seed=0)
    with pytest.raises(ValueError, match="at least two classes"):
        AttributeClassifier.fit("attribute", "type", x, np.full(len(x), "a"), np.arange(100), spec)
    with pytest.raises(ValueError, match="unknown pair score"):
        AttributeClassifier.fit("attribute", "type", x, attr, np.arange(100), spec, pair_score="max")


def test_colour_recipe_mismatch_is_refused(training_run, gallery):
    training_run.classifiers.check_backbone(gallery.spec, gallery.colour_spec)
    with pytest.raises(BackboneMismatchError, match="colour descriptor"):
        training_run.classifiers.check_backbone(gallery.spec, ColourSpec(weighting="none"))
    with pytest.raises(BackboneMismatchError, match="colour descriptor"):
        training_run.classifiers.check_backbone(gallery.spec, None)


def test_image_vectors_serve_an_inner_product_store(training_run, gallery):
    """What a vector store indexes: per-image vectors whose inner product is the method's score, "both" too."""
    cs = training_run.classifiers
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    q, qd = gallery.embeddings[:3], gallery.descriptors[:3]
    for task in ("type", "colour", "both"):
        v = cs.image_vectors("attribute", task, gallery.embeddings, gallery.descriptors)
        want = get_method("attribute").score(q, index, task=task, classifiers=cs, query_descriptors=qd)
        np.testing.assert_allclose(v[:3] @ v.T, want, rtol=1e-5, atol=1e-6)
    assert cs.image_vectors("attribute", "both", q, qd).shape[1] == len(cs.get("attribute", "type").classes) * len(
        cs.get("attribute", "colour").classes
    )
    with pytest.raises(ValueError, match="no per-image vectors"):
        cs.image_vectors("logreg", "type", q)
