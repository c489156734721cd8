"""Every method on every backend: the store's ranking equals cbir.similarity.registry's exact ranking."""

from __future__ import annotations

import numpy as np
import pytest

from cbir.similarity.attributes import AttributeClassifier
from cbir.similarity.classifiers import ClassifierSet
from cbir.index import EmbeddingIndex, top_k
from cbir.gallery.labels import TASKS
from cbir.similarity.registry import get_method
from cbir.stores import GalleryStore, Space, StoredMethod, fill_from_gallery, gallery_columns, methods_without_classifiers
from cbir.stores import methods as stored

from .test_contract import EXACT, uri_for

METHODS = ["cosine", "euclidean", "logreg", "forest", "attribute", "hybrid"]


@pytest.fixture(scope="module", params=EXACT)
def store(request, gallery, training_run, tmp_path_factory):
    uri = uri_for(request.param, tmp_path_factory, request)
    s = GalleryStore(uri, gallery.spec.dim, METHODS, training_run.classifiers)
    columns, d = gallery_columns(gallery), gallery.descriptors  # attribute classifiers read colour descriptors
    assert fill_from_gallery(s, gallery.embeddings, columns, batch_size=50, descriptors=d) == len(gallery)
    assert fill_from_gallery(s, gallery.embeddings, columns, descriptors=d) == 0  # resumes: nothing left to write
    return s


def exact(method, gallery, clf, q, task, k, exclude=-1, mask=None, qd=None):
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    scores = get_method(method).score(q, index, task=task, classifiers=clf, query_descriptors=qd)
    if mask is not None:
        scores[:, ~mask] = -np.inf
    return top_k(scores, k, exclude=np.full(len(scores), exclude))


@pytest.mark.parametrize("task", ["type", "colour", "both"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_ranks_as_the_exact_engine(store, gallery, training_run, method, task):
    clf = training_run.classifiers
    q, qd = gallery.embeddings[[3, 40, 77]], gallery.descriptors[[3, 40, 77]]
    ids, scores = store.search(method, q, 10, task=task, exclude=[3, 40, 77], descriptors=qd)
    for r, ex in enumerate([3, 40, 77]):
        w_ids, w_sc = exact(method, gallery, clf, q[r : r + 1], task, 10, exclude=ex, qd=qd[r : r + 1])
        np.testing.assert_array_equal(ids[r], w_ids[0])
        np.testing.assert_allclose(scores[r], w_sc[0], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_filters_push_down_for_every_method(store, gallery, training_run, method):
    filters = {"type": [gallery.types[0]], "colour": [gallery.colours[0], gallery.colours[50]]}
    mask = np.isin(gallery.types, filters["type"]) & np.isin(gallery.colours, filters["colour"])
    q, qd = gallery.embeddings[[0]], gallery.descriptors[[0]]
    ids, _ = store.search(method, q, 5, filters=filters, descriptors=qd)
    want, want_sc = exact(method, gallery, training_run.classifiers, q, "type", 5, mask=mask, qd=qd)
    want = np.where(np.isfinite(want_sc), want, -1)  # fewer than 5 rows may pass the filter
    np.testing.assert_array_equal(ids[0], want[0])
    assert mask[ids[0][ids[0] >= 0]].all()


def test_logreg_inner_product_is_the_classifier_logit(gallery, training_run):
    """[g, g^2] . [q * (v2 - 2 v1), v1] + c + v1.q^2 is exactly the pipeline's decision function."""
    clf = training_run.classifiers
    g, q = gallery.embeddings[:40], gallery.embeddings[[5, 9]]
    for task in ("type", "colour"):
        raw = stored.lr_query_vectors(q, task, clf) @ stored.lr_gallery_vectors(g, clf).T
        got = stored.lr_finish(raw, q, task, clf)
        pipeline = clf.get("logreg", task)
        from cbir.similarity.classifiers import pair_features

        want = np.stack([pipeline._proba(pair_features(np.broadcast_to(row, g.shape), g)) for row in q])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(np.argsort(-got, axis=1)[:, :10], np.argsort(-want, axis=1)[:, :10])


def attribute_set(clf: ClassifierSet, pair_score: str, tasks=TASKS) -> ClassifierSet:
    """The fixture's attribute classifiers for `tasks`, scoring pairs with `pair_score`."""
    return ClassifierSet(
        {("attribute", t): AttributeClassifier(c.estimator, {**c.card, "pair_score": pair_score})
         for t in tasks for c in [clf.get("attribute", t)]}
    )


@pytest.mark.parametrize("pair_score", ["bhattacharyya", "dot"])
def test_attribute_inner_product_is_the_in_process_score(gallery, training_run, pair_score):
    """Stored [v_type | v_colour | v_type (x) v_colour] . the query's block of its task = cbir.similarity.attributes' score
    (sqrt of the probabilities for the Bhattacharyya pair score, the raw probabilities for "dot")."""
    clf = attribute_set(training_run.classifiers, pair_score)
    g, d = gallery.embeddings, gallery.descriptors
    rows = stored.attribute_gallery_vectors(g, clf, d)
    nt, nc = (len(clf.get("attribute", t).classes) for t in TASKS)
    assert rows.shape[1] == stored.SPACES["attribute"].columns(gallery.spec.dim, clf) == nt + nc + nt * nc
    index, q = EmbeddingIndex(g, d), [3, 8]
    for task in ("type", "colour", "both"):
        got = stored.attribute_query_vectors(g[q], task, clf, d[q]) @ rows.T
        want = get_method("attribute").score(g[q], index, task=task, classifiers=clf, query_descriptors=d[q])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        if pair_score == "bhattacharyya":  # an image against itself scores exactly 1, the most any image can
            np.testing.assert_allclose(got[[0, 1], q], 1.0, rtol=1e-5)
            assert got.max() <= 1.0 + 1e-5


def test_attribute_store_errors_are_clear(gallery, training_run):
    g, d, columns = gallery.embeddings, gallery.descriptors, gallery_columns(gallery)
    assert "attribute" not in methods_without_classifiers() and "logreg" in methods_without_classifiers()
    with pytest.raises(ValueError, match="load classifiers"):
        GalleryStore("numpy", gallery.spec.dim, ["attribute"])
    type_only = attribute_set(training_run.classifiers, "bhattacharyya", tasks=("type",))
    s = GalleryStore("numpy", gallery.spec.dim, ["attribute"], type_only)
    fill_from_gallery(s, g, columns, descriptors=d)
    assert s.spaces["attribute"].dim == len(type_only.get("attribute", "type").classes)  # no colour or "both" block
    ids, _ = s.search("attribute", g[[4]], 5, task="type", descriptors=d[[4]])
    assert ids[0, 0] == 4
    for task in ("colour", "both"):
        with pytest.raises(ValueError, match="no 'attribute' classifier for task 'colour'"):
            s.search("attribute", g[[4]], 5, task=task, descriptors=d[[4]])
    with pytest.raises(ValueError, match="colour descriptors"):  # trained with them, the query has none
        s.search("attribute", g[[4]], 5, task="type")


def test_a_space_added_later_is_filled_alone(monkeypatch, gallery, training_run):
    """A store built without classifiers (build_index.py) gains the learned spaces (attribute, hybrid) at the
    app's first start: only those are written, the others already hold every row."""
    g, columns, n = gallery.embeddings, gallery_columns(gallery), len(gallery)
    s = GalleryStore("numpy", gallery.spec.dim, METHODS, training_run.classifiers)
    learned = {name for name in s.spaces if stored.SPACES[name].learned}
    assert learned == {"attribute", "hybrid"}
    s.add(np.arange(n), g, columns, spaces=[name for name in s.spaces if name not in learned])
    assert s.count() == 0 and s.spaces["cosine"].count() == n
    written = []
    for name, space in s.spaces.items():
        monkeypatch.setattr(space, "upsert", lambda ids, v, lab, _u=space.upsert, _n=name: (written.append(_n), _u(ids, v, lab)))
    assert fill_from_gallery(s, g, columns, descriptors=gallery.descriptors) == n
    assert set(written) == learned and s.count() == n


def test_retrained_classifiers_rewrite_the_attribute_space(gallery, training_run):
    """A persistent store keeps the probabilities of the classifiers it was filled with: other classifiers
    (here the same ones scoring with "dot") make the next fill rewrite that space."""
    g, d, columns = gallery.embeddings, gallery.descriptors, gallery_columns(gallery)
    s = GalleryStore("numpy", gallery.spec.dim, ["cosine", "attribute"], training_run.classifiers)
    assert fill_from_gallery(s, g, columns, descriptors=d) == len(gallery)
    assert fill_from_gallery(s, g, columns, descriptors=d) == 0
    s.classifiers = attribute_set(training_run.classifiers, "dot")
    assert fill_from_gallery(s, g, columns, descriptors=d) == len(gallery)
    np.testing.assert_allclose(s.spaces["attribute"].get([0, 9]), stored.attribute_gallery_vectors(g[[0, 9]], s.classifiers, d[[0, 9]]))


def test_an_inner_product_method_is_one_registry_entry(monkeypatch, gallery, tmp_path_factory):
    """A method scored as an inner product of per-image vectors (like attribute probabilities) needs
    only a Space (per-image vectors) and a StoredMethod (query vectors): here a toy 2-d 'probability'."""
    monkeypatch.setitem(stored.SPACES, "toyprob", Space("toyprob", "ip", lambda x, clf: np.abs(x[:, :2]) + 0.1))
    monkeypatch.setitem(
        stored.STORED_METHODS, "toyprob", StoredMethod("toyprob", "toyprob", lambda q, t, clf: np.abs(q[:, :2]) + 0.1)
    )
    s = GalleryStore("numpy", gallery.spec.dim, ["toyprob"])
    fill_from_gallery(s, gallery.embeddings, gallery_columns(gallery))
    q = gallery.embeddings[[7]]
    ids, scores = s.search("toyprob", q, 5)
    want = (np.abs(q[:, :2]) + 0.1) @ (np.abs(gallery.embeddings[:, :2]) + 0.1).T
    np.testing.assert_array_equal(ids[0], np.argsort(-want[0], kind="stable")[:5])


def test_unknown_method_and_missing_classifiers_are_clear(gallery):
    s = GalleryStore("numpy", gallery.spec.dim, ["cosine"])
    with pytest.raises(ValueError, match="cannot run on a vector store"):
        GalleryStore("numpy", gallery.spec.dim, ["nope"])
    fill_from_gallery(s, gallery.embeddings, gallery_columns(gallery))
    with pytest.raises(ValueError, match="load classifiers"):
        s.search("logreg", gallery.embeddings[:1], 5)
