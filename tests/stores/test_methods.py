"""Every method on every backend: the store's ranking equals cbir.similarity's exact ranking."""

from __future__ import annotations

import numpy as np
import pytest

from cbir.index import EmbeddingIndex, top_k
from cbir.similarity import get_method
from cbir.stores import GalleryStore, Space, StoredMethod, fill_from_gallery, gallery_columns
from cbir.stores import methods as stored

from .test_contract import EXACT, uri_for

METHODS = ["cosine", "euclidean", "logreg", "forest"]




@pytest.fixture(scope="module", params=EXACT)
def store(request, gallery, training_run, tmp_path_factory):
    uri = uri_for(request.param, tmp_path_factory)
    s = GalleryStore(uri, gallery.spec.dim, METHODS, training_run.classifiers)
    assert fill_from_gallery(s, gallery.embeddings, gallery_columns(gallery), batch_size=50) == len(gallery)
    assert fill_from_gallery(s, gallery.embeddings, gallery_columns(gallery)) == 0  # resumes: nothing left to write
    return s


def exact(method, gallery, clf, q, task, k, exclude=-1, mask=None):
    scores = get_method(method).score(q, EmbeddingIndex(gallery.embeddings), task=task, classifiers=clf)
    if mask is not None:
        scores[:, ~mask] = -np.inf
    return top_k(scores, k, exclude=np.full(len(scores), exclude))


@pytest.mark.parametrize("task", ["type", "colour", "both"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_ranks_as_the_exact_engine(store, gallery, training_run, method, task):
    clf = training_run.classifiers
    q = gallery.embeddings[[3, 40, 77]]
    ids, scores = store.search(method, q, 10, task=task, exclude=[3, 40, 77])
    want_ids, want_scores = exact(method, gallery, clf, q, task, 10, exclude=3)
    for r, ex in enumerate([3, 40, 77]):
        w_ids, w_sc = exact(method, gallery, clf, q[r : r + 1], task, 10, exclude=ex)
        np.testing.assert_array_equal(ids[r], w_ids[0])
        np.testing.assert_allclose(scores[r], w_sc[0], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_filters_push_down_for_every_method(store, gallery, training_run, method):
    filters = {"type": [gallery.types[0]], "colour": [gallery.colours[0], gallery.colours[50]]}
    mask = np.isin(gallery.types, filters["type"]) & np.isin(gallery.colours, filters["colour"])
    q = gallery.embeddings[[0]]
    ids, _ = store.search(method, q, 5, filters=filters)
    want, want_sc = exact(method, gallery, training_run.classifiers, q, "type", 5, mask=mask)
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
        from cbir.classifiers import pair_features

        want = np.stack([pipeline._proba(pair_features(np.broadcast_to(row, g.shape), g)) for row in q])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(np.argsort(-got, axis=1)[:, :10], np.argsort(-want, axis=1)[:, :10])


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
