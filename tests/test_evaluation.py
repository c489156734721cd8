import math

import numpy as np
import pytest

from cbir.similarity.evaluation import (
    average_precision_at_k,
    correlation_markdown,
    correlations,
    evaluate,
    relevance_matrix,
    retrieval_markdown,
    within_class,
    retrieval_metrics,
)
from cbir.index import EmbeddingIndex


def test_correlations_on_a_hand_made_case():
    # scores 1..4 against labels 0,0,1,1: Pearson = 2/sqrt(5), Spearman = the same on ranks 1..4.
    r = correlations(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1]))
    assert r["pearson"] == pytest.approx(2 / math.sqrt(5))
    assert r["spearman"] == pytest.approx(2 / math.sqrt(5))
    # a monotone but non-linear score: Spearman stays, Pearson drops
    r2 = correlations(np.array([1.0, 2.0, 3.0, 100.0]), np.array([0, 0, 1, 1]))
    assert r2["spearman"] == pytest.approx(2 / math.sqrt(5))
    assert r2["pearson"] < r["pearson"]
    perfect = correlations(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    assert perfect["spearman"] == pytest.approx(2 / math.sqrt(5))  # ties in labels cap Spearman
    anti = correlations(np.array([4.0, 3.0, 2.0, 1.0]), np.array([0, 0, 1, 1]))
    assert anti["pearson"] == pytest.approx(-2 / math.sqrt(5))
    assert (r["roc_auc"], perfect["roc_auc"], anti["roc_auc"]) == (1.0, 1.0, 0.0)
    # one positive outranked by one negative out of 2 x 2 pairs: AUC 3/4
    assert correlations(np.array([0.1, 0.5, 0.4, 0.9]), np.array([0, 0, 1, 1]))["roc_auc"] == pytest.approx(0.75)


def test_constant_scores_give_nan_not_a_crash():
    r = correlations(np.ones(5), np.array([0, 1, 0, 1, 1]))
    assert math.isnan(r["pearson"]) and math.isnan(r["spearman"])
    assert r["roc_auc"] == 0.5  # constant scores rank nothing: chance


def test_average_precision_hand_made():
    ranked = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
    ap = average_precision_at_k(ranked, n_relevant=np.array([2, 0, 5]), k=4)
    assert ap[0] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert ap[1] == 0.0
    assert ap[2] == pytest.approx((1 / 2) / 4)  # min(R, k) = 4 in the denominator


def test_retrieval_metrics_on_a_perfect_toy_gallery():
    # two tight clusters by type, colours alternating: cosine retrieves the right type perfectly.
    base = np.array([[1.0, 0.0], [0.0, 1.0]])
    vecs = np.repeat(base, 4, axis=0) + np.random.default_rng(0).normal(0, 0.01, (8, 2))
    attrs = {"type": np.repeat(["dress", "shoes"], 4), "colour": np.tile(["red", "blue"], 4)}
    index = EmbeddingIndex(vecs)
    r = retrieval_metrics("cosine", index, attrs, np.arange(8), "type", k=3)
    assert r["map@3"] == pytest.approx(1.0) and r["p@1"] == 1.0 and r["p@3"] == 1.0
    rel = relevance_matrix({k: v[:2] for k, v in attrs.items()}, attrs, "both")
    assert rel[0].tolist() == [True, False, True, False, False, False, False, False]


def test_evaluate_and_tables(training_run, gallery):
    test_pairs = {t: p["test"] for t, p in training_run.pairs.items()}
    attrs = {"type": gallery.types, "colour": gallery.colours}
    res = evaluate(
        gallery.embeddings, attrs, test_pairs, training_run.split.test, ["cosine", "logreg", "forest"],
        training_run.classifiers, n_queries=10, progress=False,
    )
    assert res["n_queries"] == 10
    for m in ("cosine", "logreg", "forest"):
        for part in ("type", "colour", "overall"):
            assert -1.0 <= res["correlation"][m][part]["pearson"] <= 1.0
        assert res["correlation"][m]["overall"]["n"] == sum(len(p) for p in test_pairs.values())
        assert 0.0 <= res["retrieval"][m]["both"]["map@10"] <= 1.0
        assert 0.0 <= res["retrieval"][m]["type"]["within_class@10"] <= 1.0 and "within_class@10" in res["retrieval"][m]["colour"]
        assert "within_class@10" not in res["retrieval"][m]["both"]
    table = correlation_markdown(res["correlation"], {"cosine": "Cosine similarity"})
    assert table.splitlines()[0].startswith("| Method | Pearson | Spearman")
    assert "| Cosine similarity |" in table and "0.387/0.358" in table
    assert "mAP@10" in retrieval_markdown(res["retrieval"], {}) and "Within class@10" in retrieval_markdown(res["retrieval"], {})


def test_within_class_is_the_share_of_right_class_results_that_also_share_the_other_attribute():
    relevant = np.array([[True, True, False], [True, False, False]])
    alike = np.array([[True, False, True], [True, True, True]])
    assert within_class(relevant, alike) == 2 / 3
    assert within_class(np.zeros((1, 3), bool), alike[:1]) == 0.0


def test_any_relevant_ndcg_and_macro_mean():
    from cbir.similarity.evaluation import any_relevant_at_k, macro_mean, ndcg_at_k

    ranked = np.array([[0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(any_relevant_at_k(ranked, 2), [0, 1, 0])
    np.testing.assert_array_equal(any_relevant_at_k(ranked, 3), [1, 1, 0])
    nd = ndcg_at_k(ranked, np.array([1, 2, 0]), 4)
    assert nd[0] == pytest.approx(1 / np.log2(4))  # one relevant item at rank 3, ideal at rank 1
    assert nd[1] == pytest.approx(1.0) and nd[2] == 0.0
    m, per = macro_mean(np.array([1.0, 0.0, 0.0, 0.0]), np.array(["a", "b", "b", "b"]))
    assert per == {"a": 1.0, "b": 0.0} and m == pytest.approx(0.5)
