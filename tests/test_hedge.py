"""Hedging the ranking of an uncertain query (cbir.similarity.hedge)."""

import numpy as np
import pytest

from cbir.similarity.hedge import HedgeSettings, NEVER, hedge, hedge_keys


def _order(s):
    return list(np.argsort(-s, kind="stable"))


# gallery: items 0-5 of class 0 (scores high), items 6-9 of class 1 (scores lower)
SCORES = np.array([[0.90, 0.89, 0.88, 0.87, 0.86, 0.85, 0.50, 0.49, 0.48, 0.47]])
CLASSES = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])


def test_certain_query_is_unchanged():
    out = hedge(SCORES, np.array([[0.95, 0.05]]), CLASSES, HedgeSettings(certain=0.9))
    np.testing.assert_array_equal(out, SCORES.astype(np.float32))
    np.testing.assert_array_equal(hedge(SCORES, np.array([[0.5, 0.5]]), CLASSES, NEVER), SCORES.astype(np.float32))


def test_uncertain_query_interleaves_in_proportion_each_class_in_score_order():
    out = hedge(SCORES, np.array([[0.6, 0.4]]), CLASSES, HedgeSettings(certain=0.9, floor=0.1, offset=1.0))
    top = [int(CLASSES[i]) for i in _order(out[0])[:5]]
    assert top == [0, 1, 0, 0, 1]  # D'Hondt: 3 of 5 slots to p = 0.6, 2 to p = 0.4, the likelier class first
    ranked = _order(out[0])
    for c in (0, 1):  # inside a class the visual (score) order is kept
        mine = [i for i in ranked if CLASSES[i] == c]
        assert mine == sorted(mine, key=lambda i: -SCORES[0, i])
    assert (np.diff(np.sort(out[0])[::-1]) < 0).all()  # strictly ordered scores: top-k sees the hedged order
    assert (out[0] <= SCORES[0] + 1e-6).all()  # scores only ever go down


def test_the_first_result_stays_the_methods_first_then_the_likeliest_class_leads():
    out = hedge(SCORES, np.array([[0.3, 0.7]]), CLASSES, HedgeSettings(certain=0.9, offset=0.5))
    order = _order(out[0])
    assert order[0] == 0  # e.g. an edited copy's very photo: the hedge never moves the first result
    assert [CLASSES[i] for i in order[1:3]] == [1, 1]


def test_floor_leaves_unlikely_classes_after_the_hedged_ones_and_rows_are_independent():
    probs = np.array([[0.6, 0.05], [0.99, 0.01]])
    keys = hedge_keys(np.vstack([SCORES, SCORES]), probs, CLASSES, HedgeSettings(certain=0.9, floor=0.1))
    assert np.isinf(keys[0, 6:]).all() and np.isfinite(keys[0, 1:6]).all() and keys[0, 0] == -np.inf
    assert np.isposinf(keys[1]).all()


def test_smaller_offset_gives_the_runner_up_an_earlier_first_slot():
    p = np.array([[0.8, 0.2]])
    first = [next(r for r, i in enumerate(_order(hedge(SCORES, p, CLASSES, HedgeSettings(offset=o))[0])) if CLASSES[i] == 1)
             for o in (1.0, 0.5, 0.2)]
    assert first[0] > first[1] > first[2]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        HedgeSettings(offset=0)
    assert HedgeSettings.from_card({"hedge": {"certain": 0.8}}) == HedgeSettings(certain=0.8)
    assert HedgeSettings.from_card({}) == HedgeSettings()


def test_engine_hedges_the_hybrid_by_the_cards_settings_and_leaves_other_methods(gallery, extractor, training_run):
    import copy

    from cbir.search.engine import SearchEngine
    from cbir.similarity.registry import get_method

    cs = copy.copy(training_run.classifiers)
    clf = copy.copy(cs.get("attribute", "type"))
    clf.card = {**clf.card, "hedge": {"certain": 1.01, "floor": 0.01, "offset": 0.2}, "calibration": {"temperature": 5.0}}
    cs.classifiers = {**dict(cs.classifiers), ("attribute", "type"): clf}
    engine = SearchEngine(gallery, extractor, cs)
    q, d = gallery.embeddings[:4], gallery.descriptors[:4]
    plain = get_method("hybrid").score(q, engine.index, task="type", classifiers=cs, query_descriptors=d)
    hedged = engine.score_matrix(q, "hybrid", "type", d)
    assert (hedged.argmax(1) == plain.argmax(1)).all()  # the first result is the hybrid's
    assert not np.array_equal(np.argsort(-hedged, 1), np.argsort(-plain, 1))  # the rest interleaves the classes
    cos = get_method("cosine").score(q, engine.index)
    np.testing.assert_array_equal(engine.score_matrix(q, "cosine", "type"), cos)
    clf.card["hedge"]["certain"] = 0.0  # never
    np.testing.assert_array_equal(engine.score_matrix(q, "hybrid", "type", d), plain)
