"""cbir.train.calibration: the shopper's figures per method on the fixture gallery, the hedge's choice rule, the
labelled rows a recipe is refitted on."""

import numpy as np
import pytest

from cbir.train.attributes import Part
from cbir.train.calibration import choose_hedge, hedge_grid, labelled, method_scorers, score_sources, shopper_figures
from cbir.index import EmbeddingIndex
from cbir.similarity.hedge import NEVER, HedgeSettings


def test_shopper_figures_macro_over_types():
    gallery_types = np.array(["a", "a", "b", "b", "b"])
    scores = np.array([[0.9, 0.1, 0.8, 0.7, 0.6],   # a: a first, then b b b a
                       [0.1, 0.2, 0.3, 0.4, 0.9],   # b: all b first
                       [0.1, 0.2, 0.9, 0.8, 0.7]])  # a: b b b first, a at 4-5
    f = shopper_figures(scores, gallery_types, np.array(["a", "b", "a"]), k=5)
    assert f["P@1 per type"] == {"a": 0.5, "b": 1.0} and f["P@1"] == pytest.approx(0.75)
    assert f["any@5 per type"]["a"] == 1.0  # a right type at rank 4 or 5 counts
    assert f["P@5 per type"]["a"] == pytest.approx(0.4)
    assert 0 < f["nDCG@5 per type"]["a"] < 1 and f["nDCG@5 per type"]["b"] == pytest.approx(1.0)


def test_choose_hedge_takes_the_best_mean_of_p5_and_any_right():
    rows = [{"settings": NEVER.to_dict(), "P@1": 0.9, "P@5": 0.85, "any@5": 0.86, "nDCG@10": 0.8},
            {"settings": HedgeSettings(0.9).to_dict(), "P@1": 0.9, "P@5": 0.845, "any@5": 0.93, "nDCG@10": 0.8},
            {"settings": HedgeSettings(1.01).to_dict(), "P@1": 0.9, "P@5": 0.70, "any@5": 0.99, "nDCG@10": 0.7}]
    assert choose_hedge(rows)["settings"] == HedgeSettings(0.9).to_dict()
    assert choose_hedge(rows[:1] + rows[2:])["settings"] == NEVER.to_dict()  # hedging must pay for itself


def test_every_method_scores_the_fixture_gallery(gallery, training_run):
    """The harness end to end on the tiny gallery: hedged and plain hybrid, cosine and attribute, and the grid."""
    cs = training_run.classifiers
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    rows = np.arange(len(gallery))
    part = Part.of("fixture", gallery, rows)
    types = np.asarray(gallery.types, dtype=object)
    queries = {"fixture": (part, types, part.types)}
    out = score_sources(queries, method_scorers(index, cs, HedgeSettings(certain=1.01)))
    assert {r["method"] for r in out} == {"hybrid hedged (default)", "hybrid plain", "cosine", "attribute"}
    for r in out:
        assert 0 <= r["P@1"] <= r["any@5"] <= 1 and 0 <= r["nDCG@10"] <= 1
    grid = hedge_grid(part, types, part.types, index, cs)
    assert choose_hedge(grid + grid)["query sets"] == ["fixture", "fixture"]
    assert grid[0]["settings"] == NEVER.to_dict() and len(grid) > 10
    plain = next(r for r in out if r["method"] == "hybrid plain")
    assert grid[0]["P@5"] == pytest.approx(plain["P@5"])


def test_labelled_keeps_only_rows_with_the_task_label():
    x, d = np.arange(8.0).reshape(4, 2), np.ones((4, 3))
    a = Part("a", np.arange(2), x[:2], d[:2], np.array(["dress", None], dtype=object), np.array([None, "red"], dtype=object))
    b = Part("b", np.arange(2), x[2:], d[2:], np.array(["shoes", "pants"], dtype=object), np.array(["blue", None], dtype=object))
    xs, ds, ys = labelled([a, b], "type")
    assert ys.tolist() == ["dress", "shoes", "pants"] and xs.tolist() == [[0, 1], [4, 5], [6, 7]] and ds.shape == (3, 3)
    assert labelled([a, b], "colour")[2].tolist() == ["red", "blue"]
