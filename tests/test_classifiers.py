import json

import numpy as np
import pytest
import skops.io as sio

from cbir.similarity.classifiers import CLASSIFIER_KINDS, ClassifierSet, PairClassifier, pair_features
from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec
from cbir.index import EmbeddingIndex
from cbir.similarity.pairs import build_task_pairs, split_images
from cbir.similarity.registry import get_method


def test_pair_features_are_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.random((4, 8)), rng.random((4, 8))
    np.testing.assert_array_equal(pair_features(a, b), pair_features(b, a))
    assert pair_features(a, b).shape == (4, 16)


def test_every_kind_trained_per_task(training_run):
    cs = training_run.classifiers
    assert set(cs.classifiers) == {(k, t) for k in CLASSIFIER_KINDS for t in ("type", "colour")}
    forest = cs.get("forest", "type")
    assert forest.projection is not None and forest.card["projection"].startswith("PCA(")
    assert cs.get("logreg", "type").projection is None
    card = cs.get("logreg", "colour").card
    assert card["train_pairs"] == len(training_run.pairs["colour"]["train"])
    assert card["pair_features"] == "sqdiff+prod" and card["backbone"]["model"] == "test_resnet.r160_in1k"


@pytest.mark.parametrize("kind", ["logreg", "forest"])
def test_gallery_scores_equal_pair_scores(training_run, gallery, kind):
    clf = training_run.classifiers.get(kind, "type")
    index = EmbeddingIndex(gallery.embeddings)
    q = gallery.embeddings[[0, 40]]
    full = clf.score(q, index)
    assert full.shape == (2, len(gallery))
    for row, qi in enumerate(q):
        pairs = clf.score_pairs(np.repeat(qi[None], len(gallery), 0), gallery.embeddings)
        np.testing.assert_allclose(full[row], pairs, rtol=1e-4, atol=1e-5)


def test_logreg_matrix_form_equals_predict_proba(training_run, gallery):
    """The closed-form gallery scoring must reproduce sklearn's own predict_proba."""
    clf = training_run.classifiers.get("logreg", "colour")
    a, b = gallery.embeddings[:20], gallery.embeddings[20:40]
    sk = clf.estimator.predict_proba(pair_features(a, b))[:, 1]
    index = EmbeddingIndex(b)
    mat = np.diag(clf.score(a, index))
    np.testing.assert_allclose(mat, sk, rtol=1e-4, atol=1e-5)


def test_skops_roundtrip_gives_identical_scores(training_run, classifier_dir, gallery):
    loaded = ClassifierSet.load(classifier_dir)
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    q, qd = gallery.embeddings[:4], gallery.descriptors[:4]
    for kind, task in training_run.classifiers.classifiers:
        a = loaded.score(kind, task, q, index, qd)
        b = training_run.classifiers.score(kind, task, q, EmbeddingIndex(gallery.embeddings, gallery.descriptors), qd)
        np.testing.assert_array_equal(a, b)
        assert loaded.get(kind, task).card == training_run.classifiers.get(kind, task).card
        assert type(loaded.get(kind, task)) is type(training_run.classifiers.get(kind, task))
    manifest = json.loads((classifier_dir / "classifiers.json").read_text())
    assert len(manifest["classifiers"]) == 2 * len(CLASSIFIER_KINDS)
    assert all(p.suffix in {".skops", ".json", ".npz"} for p in classifier_dir.iterdir())


def test_untrusted_types_in_a_skops_file_are_refused(tmp_path, training_run):
    from functools import partial

    clf = training_run.classifiers.get("logreg", "type")
    sio.dump({"estimator": clf.estimator, "projection": partial(max, 1)}, tmp_path / "logreg-type.skops")
    (tmp_path / "logreg-type.json").write_text(json.dumps(clf.card))
    with pytest.raises(ValueError, match="does not trust"):
        PairClassifier.load(tmp_path / "logreg-type.skops", tmp_path / "logreg-type.json")


@pytest.mark.parametrize("payload", ["svc", "function"])
def test_a_tampered_skops_file_carrying_another_type_is_refused(tmp_path, classifier_dir, payload):
    """A classifier folder whose logreg file was swapped: a model skops itself trusts by default (SVC), or a
    callable, are both outside the project's allowlist, and loading the folder fails before anything is built."""
    import shutil

    from sklearn.svm import SVC

    from cbir.similarity.classifiers import ClassifierSet

    folder = tmp_path / "tampered"
    shutil.copytree(classifier_dir, folder)
    evil = SVC() if payload == "svc" else {"estimator": print, "projection": None}
    sio.dump({"estimator": evil, "projection": None} if payload == "svc" else evil, folder / "logreg-type.skops")
    expected = "sklearn.svm._classes.SVC" if payload == "svc" else "builtins.print"
    with pytest.raises(ValueError, match="does not trust") as err:
        ClassifierSet.load(folder)
    assert expected in str(err.value)


def test_both_task_is_the_product(training_run, gallery):
    cs = training_run.classifiers
    index = EmbeddingIndex(gallery.embeddings)
    q = gallery.embeddings[:2]
    both = get_method("logreg").score(q, index, task="both", classifiers=cs)
    np.testing.assert_allclose(both, cs.score("logreg", "type", q, index) * cs.score("logreg", "colour", q, index))
    with pytest.raises(ValueError, match="unknown task"):
        cs.score("logreg", "size", q, index)
    with pytest.raises(ValueError, match="no 'svm' classifier"):
        cs.get("svm", "type")


def test_backbone_mismatch_refused(training_run, gallery):
    other = EmbeddingSpec.from_dict({**gallery.spec.to_dict(), "model": "resnet18"})
    training_run.classifiers.check_backbone(gallery.spec, gallery.colour_spec)
    with pytest.raises(BackboneMismatchError):
        training_run.classifiers.check_backbone(other, gallery.colour_spec)


@pytest.mark.parametrize("kind", ["logreg", "forest"])
def test_classifiers_learn_an_attribute_encoded_in_the_features(kind):
    """Features that carry the attribute in a few dimensions: the classifier must beat chance clearly."""
    rng = np.random.default_rng(0)
    n, dim = 400, 32
    attr = rng.integers(0, 4, n).astype(str)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x[:, :4] += 3.0 * np.eye(4)[attr.astype(int)]
    split = split_images(attr, test_fraction=0.3, seed=0)
    pairs = build_task_pairs({"type": attr}, split, n_pairs=2000, seed=0)["type"]
    spec = EmbeddingSpec("toy", "random", dim, {}, seed=0)
    clf = PairClassifier.fit(kind, "type", x, pairs["train"], split.train, spec, projection_dim=8 if kind == "forest" else None)
    test = pairs["test"]
    acc = ((clf.score_pairs(x[test.left], x[test.right]) > 0.5) == test.label.astype(bool)).mean()
    assert acc > 0.85


def test_cards_carry_held_out_metrics(training_run):
    for clf in training_run.classifiers.classifiers.values():
        m = clf.card["metrics"]
        assert m["test_pairs"] == len(training_run.pairs[clf.task]["test"])
        assert 0.0 <= m["accuracy"] <= 1.0 and -1.0 <= m["pearson"] <= 1.0
