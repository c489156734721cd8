"""cbir.similarity.hybrid: per-task weights, the whitened instance term, pairs scored as the gallery is."""

from __future__ import annotations

import numpy as np
import pytest

from cbir.index import EmbeddingIndex, l2_normalize
from cbir.similarity.hybrid import DEFAULT_WEIGHTS, HybridWeights, hybrid_pairs, hybrid_scores, weights_for


def test_every_task_has_weights_that_sum_to_one_and_an_unknown_task_is_refused():
    assert set(DEFAULT_WEIGHTS) == {"type", "colour", "both"}
    for w in DEFAULT_WEIGHTS.values():
        assert np.isclose(sum(w.to_dict().values()), 1.0) and w.w_class >= 0.5
    assert weights_for("colour") is DEFAULT_WEIGHTS["colour"]
    mine = HybridWeights(1.0, 0.0, 0.0, 0.0)
    assert weights_for("type", mine) is mine
    with pytest.raises(ValueError, match="unknown task"):
        weights_for("size")
    with pytest.raises(ValueError, match="sum to 1"):
        HybridWeights(0.5, 0.2, 0.1, 0.3)


@pytest.mark.parametrize("task", ["type", "colour", "both"])
def test_the_score_is_the_weighted_sum_of_its_four_terms(gallery, training_run, task):
    clf = training_run.classifiers
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    q, qd = gallery.embeddings[[2, 30]], gallery.descriptors[[2, 30]]
    w = DEFAULT_WEIGHTS[task]
    a = clf.score("attribute", task, q, index, qd)
    c = l2_normalize(q) @ l2_normalize(gallery.embeddings).T
    d = qd @ gallery.descriptors.T
    wt = clf.whitening.transform(q) @ clf.whitening.transform(gallery.embeddings).T
    want = w.w_class * a + w.w_cosine * c + w.w_colour * d + w.w_instance * wt
    np.testing.assert_allclose(hybrid_scores(q, index, task, clf, qd), want, rtol=1e-4, atol=1e-5)
    # the pair score is the same formula: row i of the gallery scores equals the pair (query i, gallery j)
    j = np.array([5, 60])
    pairs = hybrid_pairs(q, gallery.embeddings[j], task, clf, (qd, gallery.descriptors[j]))
    np.testing.assert_allclose(pairs, want[[0, 1], j], rtol=1e-4, atol=1e-5)


def test_the_instance_term_uses_the_whitening_and_without_one_is_a_cosine(gallery, training_run):
    clf = training_run.classifiers
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    q, qd = gallery.embeddings[[7]], gallery.descriptors[[7]]
    only = HybridWeights(0.0, 0.0, 0.0, 1.0)
    whitened = hybrid_scores(q, index, "type", clf, qd, weights=only)
    np.testing.assert_allclose(whitened, clf.whitening.transform(q) @ clf.whitening.transform(gallery.embeddings).T,
                               rtol=1e-4, atol=1e-5)
    plain = type(clf)(clf.classifiers)  # the same classifiers, no whitening
    np.testing.assert_allclose(hybrid_scores(q, index, "type", plain, qd, weights=only),
                               l2_normalize(q) @ l2_normalize(gallery.embeddings).T, rtol=1e-4, atol=1e-5)
    assert not np.allclose(whitened, hybrid_scores(q, index, "type", plain, qd, weights=only), atol=1e-3)


def test_the_gallery_is_whitened_once_and_counted_in_the_index_size(gallery, training_run):
    clf = training_run.classifiers
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    q, qd = gallery.embeddings[[1]], gallery.descriptors[[1]]
    empty = index.nbytes
    hybrid_scores(q, index, "type", clf, qd)
    after = index.nbytes
    assert after - empty >= len(gallery) * clf.whitening.dim * 4  # the whitened gallery is counted
    hybrid_scores(gallery.embeddings[[2]], index, "type", clf, gallery.descriptors[[2]])
    assert index.nbytes == after  # and made once


def test_weights_tuned_into_the_classifier_folder_are_read_from_it_and_old_folders_keep_the_defaults(
        gallery, training_run, tmp_path):
    from cbir.similarity.classifiers import ClassifierSet
    from cbir.train.hybrid import write_weights

    training_run.classifiers.save(tmp_path)
    old = ClassifierSet.load(tmp_path)
    assert weights_for("type", classifiers=old) == DEFAULT_WEIGHTS["type"]  # no setting: the built-in weights
    tuned = {"w_class": 0.9, "w_cosine": 0.1, "w_colour": 0.0, "w_instance": 0.0, "p@10": 0.5}
    assert write_weights(tmp_path, {"type": tuned})["type"] == {k: v for k, v in tuned.items() if k != "p@10"}
    clf = ClassifierSet.load(tmp_path)
    assert weights_for("type", classifiers=clf) == HybridWeights(0.9, 0.1, 0.0, 0.0)
    assert weights_for("colour", classifiers=clf) == DEFAULT_WEIGHTS["colour"]  # a task not tuned keeps its default
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    q, qd = gallery.embeddings[[2]], gallery.descriptors[[2]]
    want = hybrid_scores(q, index, "type", clf, qd, weights=HybridWeights(0.9, 0.1, 0.0, 0.0))
    np.testing.assert_allclose(hybrid_scores(q, index, "type", clf, qd), want, rtol=1e-6)
    clf.save(tmp_path / "again")  # saving keeps the setting
    assert ClassifierSet.load(tmp_path / "again").settings == clf.settings
