"""cbir.train.attributes: type P@K (macro and per query), the validation choice, the shared-type filter."""

import numpy as np

from cbir.train.attributes import Part, choose, shared, type_precision


def test_type_precision_is_macro_over_types_and_micro_over_queries():
    gallery_types = np.array(["a", "a", "b", "b"], dtype=object)
    query_types = np.array(["a", "a", "a", "b"], dtype=object)
    scores = np.array([
        [0.9, 0.8, 0.1, 0.0],  # a: top-1 a, top-2 a a
        [0.9, 0.1, 0.8, 0.0],  # a: a then b
        [0.0, 0.1, 0.9, 0.8],  # a: b b (wrong)
        [0.0, 0.1, 0.9, 0.8],  # b: b b
    ])
    out = type_precision(scores, gallery_types, query_types, ks=(1, 2))
    assert out["P@1 per type"] == {"a": 2 / 3, "b": 1.0}
    assert np.isclose(out["P@1"], (2 / 3 + 1.0) / 2)
    assert np.isclose(out["P@1 micro"], 3 / 4)
    assert np.isclose(out["P@2 per type"]["a"], (2 + 1 + 0) / 6)
    assert out["queries per type"] == {"a": 3, "b": 1}


def test_choose_takes_the_best_mean_of_macro_and_micro_and_never_a_shipped_model():
    rows = [
        {"model": "shipped", "method": "hybrid", "P@1": 1.0, "P@1 micro": 1.0},
        {"model": "x", "method": "hybrid", "P@1": 0.9, "P@1 micro": 0.9}, {"model": "x", "method": "hybrid", "P@1": 0.5, "P@1 micro": 0.5},
        {"model": "y", "method": "hybrid", "P@1": 0.8, "P@1 micro": 0.8}, {"model": "y", "method": "hybrid", "P@1": 0.7, "P@1 micro": 0.7},
        {"model": "x", "method": "attribute", "P@1": 1.0, "P@1 micro": 1.0},
    ]
    assert choose(rows, "type") == "y"
    # a model that wins the macro mean by a rare type but answers far fewer queries right loses
    macro_only = [{"model": "m", "method": "hybrid", "P@1": 0.86, "P@1 micro": 0.72},
                  {"model": "p", "method": "hybrid", "P@1": 0.84, "P@1 micro": 0.97}]
    assert choose(macro_only, "type") == "p"
    colour = [{"model": "shipped", "accuracy": 1.0}, {"model": "a", "accuracy": 0.6}, {"model": "b", "accuracy": 0.7}]
    assert choose(colour, "colour") == "b"


def test_shared_keeps_only_the_types_every_source_names_alike():
    part = Part("p", np.arange(3), np.zeros((3, 2)), np.zeros((3, 1)), np.array(["dress", "shirt", "shoes"], dtype=object),
                np.array(["red", "blue", "black"], dtype=object))
    kept = shared(part)
    assert list(kept.types) == ["dress", "shoes"] and list(kept.rows) == [0, 2] and kept.x.shape == (2, 2)
