"""Evaluation: score/label correlation on held-out pairs, and leave-one-out retrieval metrics."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from scipy import stats

from cbir.similarity.classifiers import ClassifierSet
from cbir.index import EmbeddingIndex, top_k
from cbir.similarity.pairs import Pairs
from cbir.similarity.registry import get_method

# The reference study's figures (Pearson, Spearman) on its pairs.
REFERENCE = {
    "cosine": (0.387, 0.358),
    "euclidean": (0.298, 0.276),
    "logreg": (0.721, 0.719),
    "forest": (0.696, 0.705),
}


def correlations(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Pearson, Spearman and ROC-AUC between scores and 0/1 labels (NaN when either is constant).

    With balanced binary labels Spearman cannot exceed ~0.866 (ties), so ROC-AUC is reported beside it.
    """
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if len(scores) < 2 or np.ptp(labels) == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "roc_auc": float("nan"), "n": int(len(scores))}
    auc = float(roc_auc_score(labels, scores))
    if np.ptp(scores) == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "roc_auc": auc, "n": int(len(scores))}
    return {
        "pearson": float(stats.pearsonr(scores, labels)[0]),
        "spearman": float(stats.spearmanr(scores, labels)[0]),
        "roc_auc": auc,
        "n": int(len(scores)),
    }


def pair_correlations(
    method: str,
    embeddings: np.ndarray,
    pairs: dict[str, Pairs],
    classifiers: Optional[ClassifierSet] = None,
    descriptors: Optional[np.ndarray] = None,
) -> dict[str, dict[str, float]]:
    """Per-task and overall (all tasks' pairs pooled) correlations of one method on test pairs."""
    m = get_method(method)
    all_scores, all_labels = [], []
    out: dict[str, dict[str, float]] = {}
    for task, p in sorted(pairs.items()):
        d = None if descriptors is None else (descriptors[p.left], descriptors[p.right])
        s = m.score_pairs(embeddings[p.left], embeddings[p.right], task=task, classifiers=classifiers, descriptors=d)
        out[task] = correlations(s, p.label)
        all_scores.append(s)
        all_labels.append(p.label)
    out["overall"] = correlations(np.concatenate(all_scores), np.concatenate(all_labels))
    return out


def average_precision_at_k(relevant_ranked: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@k per row: mean of precision@i over the relevant ranks i <= k, over min(R, k) (0 when R = 0)."""
    rel = relevant_ranked[:, :k].astype(np.float64)
    prec_at_i = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    denom = np.minimum(n_relevant, k)
    return np.where(denom > 0, (prec_at_i * rel).sum(axis=1) / np.maximum(denom, 1), 0.0)


def any_relevant_at_k(relevant_ranked: np.ndarray, k: int) -> np.ndarray:
    """Per row: 1.0 when any of the top k is relevant (a shopper's second chance), else 0.0."""
    return np.asarray(relevant_ranked)[:, :k].any(axis=1).astype(np.float64)


def ndcg_at_k(relevant_ranked: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per row: binary nDCG@k, DCG of the ranking over the DCG of min(R, k) relevant items first (0 when R = 0)."""
    rel = np.asarray(relevant_ranked)[:, :k].astype(np.float64)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = rel @ discount[: rel.shape[1]]
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(np.asarray(n_relevant), k)]
    return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)


def macro_mean(values: np.ndarray, groups: np.ndarray) -> tuple[float, dict[str, float]]:
    """The mean over groups (e.g. the queries' types) of each group's mean, and the per-group means."""
    values, groups = np.asarray(values, np.float64), np.asarray(groups).astype(str)
    per = {g: float(values[groups == g].mean()) for g in sorted(set(groups))}
    return (float(np.mean(list(per.values()))) if per else float("nan")), per


RELEVANCE = ("type", "colour", "both")
OTHER_ATTRIBUTE = {"type": "colour", "colour": "type"}  # what "alike" means inside a task's class


def within_class(relevant: np.ndarray, alike: np.ndarray) -> float:
    """Of the right-class results in a ranking ((Q, k) bools), the share that also has the query's other attribute
    (colour for type): how far a method puts a class's look-alikes first, which P@k and instance recall do not see."""
    return float((relevant & alike).sum() / max(int(relevant.sum()), 1))


def relevance_matrix(query_attrs: dict[str, np.ndarray], gallery_attrs: dict[str, np.ndarray], kind: str) -> np.ndarray:
    """(Q, N) bool: gallery item relevant to the query by type, colour, or both."""
    keys = ("type", "colour") if kind == "both" else (kind,)
    rel = np.ones((len(query_attrs[keys[0]]), len(gallery_attrs[keys[0]])), dtype=bool)
    for key in keys:
        rel &= query_attrs[key][:, None] == gallery_attrs[key][None, :]
    return rel


def retrieval_metrics(
    method: str,
    index: EmbeddingIndex,
    attributes: dict[str, np.ndarray],
    queries: np.ndarray,
    relevance: str,
    classifiers: Optional[ClassifierSet] = None,
    k: int = 10,
    batch: int = 256,
) -> dict[str, float]:
    """Leave-one-out retrieval: each query row of the gallery searches the rest; mAP@k, P@1, P@k, and for type or
    colour with the other attribute known, within_class@k (see within_class).

    Learned methods score with the classifier of the relevance's task ("both" = product of the two).
    """
    m = get_method(method)
    attrs = {a: np.asarray(v).astype(str) for a, v in attributes.items()}
    other = OTHER_ATTRIBUTE.get(relevance, "")
    ap, p1, pk, top_relevant, top_alike = [], [], [], [], []
    for s in range(0, len(queries), batch):
        qi = np.asarray(queries[s : s + batch])
        qd = None if index.descriptors is None else index.descriptors[qi]
        scores = m.score(index.vectors[qi], index, task=relevance, classifiers=classifiers, query_descriptors=qd)
        idx, _ = top_k(scores, k, exclude=qi)
        rel_all = relevance_matrix({a: v[qi] for a, v in attrs.items()}, attrs, relevance)
        rel_all[np.arange(len(qi)), qi] = False
        ranked = np.take_along_axis(rel_all, idx, axis=1)
        ap.append(average_precision_at_k(ranked, rel_all.sum(axis=1), k))
        p1.append(ranked[:, :1].mean(axis=1))
        pk.append(ranked[:, :k].sum(axis=1) / k)
        if other in attrs:
            top_relevant.append(ranked[:, :k])
            top_alike.append(attrs[other][idx[:, :k]] == attrs[other][qi][:, None])
    out = {
        f"map@{k}": float(np.concatenate(ap).mean()),
        "p@1": float(np.concatenate(p1).mean()),
        f"p@{k}": float(np.concatenate(pk).mean()),
        "queries": int(len(queries)),
    }
    if top_relevant:
        out[f"within_class@{k}"] = within_class(np.concatenate(top_relevant), np.concatenate(top_alike))
    return out


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def correlation_markdown(results: dict[str, dict[str, dict[str, float]]], labels: dict[str, str]) -> str:
    """The reference study's layout (Method | Pearson | Spearman), overall, plus ROC-AUC and per-task columns."""
    lines = [
        "| Method | Pearson | Spearman | ROC-AUC | Pearson (type) | Spearman (type) | ROC-AUC (type) "
        "| Pearson (colour) | Spearman (colour) | ROC-AUC (colour) | Reference P/S |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    for name, r in results.items():
        ref = REFERENCE.get(name)
        cells = [labels.get(name, name)]
        for task in ("overall", "type", "colour"):
            t = r.get(task, {})
            cells += [_fmt(t.get("pearson", nan)), _fmt(t.get("spearman", nan)), _fmt(t.get("roc_auc", nan))]
        cells.append(f"{ref[0]:.3f}/{ref[1]:.3f}" if ref else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def retrieval_markdown(results: dict[str, dict[str, dict[str, Any]]], labels: dict[str, str], k: int = 10) -> str:
    """Method | relevant = | mAP@k | P@1 | P@k | within class@k | queries."""
    lines = [f"| Method | Relevant = same | mAP@{k} | P@1 | P@{k} | Within class@{k} | Queries |",
             "|---|---|---|---|---|---|---|"]
    for name, by_rel in results.items():
        for rel, r in by_rel.items():
            lines.append(
                f"| {labels.get(name, name)} | {rel} | {_fmt(r[f'map@{k}'])} | {_fmt(r['p@1'])} | "
                f"{_fmt(r[f'p@{k}'])} | {_fmt(r.get(f'within_class@{k}', float('nan')))} | {r['queries']} |"
            )
    return "\n".join(lines)


def evaluate(
    embeddings: np.ndarray,
    attributes: dict[str, np.ndarray],
    test_pairs: dict[str, Pairs],
    query_pool: np.ndarray,
    methods: list[str],
    classifiers: Optional[ClassifierSet] = None,
    n_queries: int | None = 500,
    k: int = 10,
    seed: int = 0,
    progress: bool = True,
    descriptors: Optional[np.ndarray] = None,
) -> dict[str, Any]:
    """Correlations on held-out pairs and retrieval with held-out images as queries, for each method.

    `n_queries` samples the query pool (seeded) to bound the cost of the random forest; None = all.
    Retrieval is judged only on the attributes given (a gallery without colour labels: type only).
    `descriptors` are the gallery's colour descriptors (for the methods that use them).
    """
    from tqdm.auto import tqdm

    index = EmbeddingIndex(embeddings, descriptors)
    rng = np.random.default_rng(seed)
    pool = np.asarray(query_pool)
    queries = np.sort(rng.choice(pool, size=n_queries, replace=False)) if n_queries and n_queries < len(pool) else pool
    relevances = [r for r in RELEVANCE if all(t in attributes for t in (("type", "colour") if r == "both" else (r,)))]
    out: dict[str, Any] = {"correlation": {}, "retrieval": {}, "k": k, "n_queries": int(len(queries))}
    for name in tqdm(methods, desc="evaluating", unit="method", disable=not progress):
        out["correlation"][name] = pair_correlations(name, embeddings, test_pairs, classifiers, descriptors)
        out["retrieval"][name] = {
            rel: retrieval_metrics(name, index, attributes, queries, rel, classifiers, k=k) for rel in relevances
        }
    return out
