"""Query latency per method (vectorised vs a naive per-item loop), memory per gallery, and the latency targets."""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

from cbir.similarity.classifiers import ClassifierSet
from cbir.index import EmbeddingIndex, top_k
from cbir.similarity.registry import get_method

from .config import BenchmarkConfig
from .data import DataCache, synthetic_classifiers
from .measure import MB, Log, log_stderr, rss_bytes, summarize_ms, target

def query_latency(
    method: str,
    index: EmbeddingIndex,
    queries: np.ndarray,
    k: int = 10,
    task: str = "type",
    classifiers: Optional[ClassifierSet] = None,
    warmup: int = 1,
) -> dict[str, float]:
    """Single-query time of scoring the whole gallery plus top-k, one sample per query row.

    The first `warmup` calls are not timed: they fill the index's caches (norms, projections).
    """
    m = get_method(method)
    queries = np.asarray(queries, dtype=np.float32)
    for q in queries[: max(warmup, 0)]:
        top_k(m.score(q, index, task=task, classifiers=classifiers), k)
    timed = queries[warmup:] if len(queries) > warmup else queries
    times = []
    for q in timed:  # a loop over repeated queries, not over gallery items
        t0 = time.perf_counter()
        top_k(m.score(q, index, task=task, classifiers=classifiers), k)
        times.append(time.perf_counter() - t0)
    return summarize_ms(times)


def naive_query(
    method: str,
    query: np.ndarray,
    vectors: np.ndarray,
    k: int = 10,
    task: str = "type",
    classifiers: Optional[ClassifierSet] = None,
    budget_s: float = 3.0,
) -> dict[str, Any]:
    """The deliberately naive baseline: a Python loop scoring one gallery item at a time.

    Stops after `budget_s` seconds and extrapolates linearly to the whole gallery (flagged in the
    result); returns the scores it computed so they can be checked against the vectorised ones.
    """
    import heapq

    m = get_method(method)
    q = np.asarray(query, dtype=np.float32)[None, :]
    scores: list[float] = []
    t0 = time.perf_counter()
    deadline = t0 + budget_s
    for i in range(len(vectors)):  # deliberately one item per iteration
        scores.append(float(m.score_pairs(q, vectors[i : i + 1], task=task, classifiers=classifiers)[0]))
        if time.perf_counter() > deadline:
            break
    heapq.nlargest(k, range(len(scores)), key=scores.__getitem__)
    elapsed = time.perf_counter() - t0
    done = len(scores)
    return {
        "items_timed": done,
        "seconds_timed": elapsed,
        "extrapolated": done < len(vectors),
        "estimated_ms": elapsed / done * len(vectors) * 1000.0,
        "scores": np.asarray(scores, dtype=np.float32),
    }


def gallery_latency(
    name: str,
    vectors: np.ndarray,
    methods: Sequence[str],
    classifiers: Optional[ClassifierSet],
    cfg: BenchmarkConfig,
    data_note: str,
    log: Log = log_stderr,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Latency rows (vectorised vs naive) for every method on one gallery, and its memory row."""
    rng = np.random.default_rng(cfg.seed)
    rss0 = rss_bytes()
    index = EmbeddingIndex(vectors)
    rows = []
    for method in methods:
        reps = cfg.slow_repeats if method == "forest" else cfg.repeats
        qrows = rng.choice(len(vectors), size=min(reps + 1, len(vectors)), replace=False)
        queries = vectors[qrows]
        log(f"latency: {name} {method} ({reps} queries)")
        stats = query_latency(method, index, queries, cfg.k, "type", classifiers, warmup=1)
        naive = naive_query(method, queries[0], vectors, cfg.k, "type", classifiers, cfg.naive_budget_s)
        m = get_method(method)
        exact = m.score(queries[0], index, task="type", classifiers=classifiers)[0, : naive["items_timed"]]
        rows.append(
            {
                "gallery": name,
                "n": int(len(vectors)),
                "dim": int(vectors.shape[1]),
                "data": data_note,
                "method": method,
                **stats,
                "naive_ms": naive["estimated_ms"],
                "naive_items_timed": naive["items_timed"],
                "naive_extrapolated": naive["extrapolated"],
                "naive_max_abs_diff": float(np.abs(naive["scores"] - exact).max()),
                "speedup": naive["estimated_ms"] / stats["median_ms"],
                # forest scores a 64-d projection with trees: no full-matrix stream to speak of
                "gallery_read_gbps": None if method == "forest" else vectors.nbytes / stats["median_ms"] / 1e6,
            }
        )
    memory = {
        "gallery": name,
        "n": int(len(vectors)),
        "dim": int(vectors.shape[1]),
        "vectors_mb": vectors.nbytes / MB,
        "index_nbytes_mb": index.nbytes / MB,
        "index_unique_mb": unique_nbytes(index) / MB,
        "float16_vectors_mb": vectors.nbytes / 2 / MB,
        "rss_mb": rss_bytes() / MB,
        "rss_growth_mb": (rss_bytes() - rss0) / MB,
        "note": "index_nbytes = vectors + cached derived arrays (norms, projections) after querying",
    }
    return rows, memory


def unique_nbytes(index: EmbeddingIndex) -> int:
    """Like EmbeddingIndex.nbytes, but an array cached as a view of another (e.g. a classifier's
    "projection" that is the gallery itself) is counted once: the memory the index really holds."""
    arrays = [index.vectors] + [a for a in vars(index).get("_cache", {}).values() if isinstance(a, np.ndarray)]
    kept: list[np.ndarray] = []
    for a in arrays:
        if not any(np.may_share_memory(a, b) for b in kept):
            kept.append(a)
    return sum(a.nbytes for a in kept)


def latency_targets(rows: Sequence[dict[str, Any]], full_n: int = 11_385) -> list[dict[str, Any]]:
    """The issue's targets, checked against measured rows (only where the gallery size was run)."""
    by = {(r["n"], r["dim"], r["method"]): r for r in rows}
    out: list[dict[str, Any]] = []
    for method, limit in (("cosine", 50.0), ("euclidean", 50.0), ("forest", 1000.0)):
        for (n, dim, m), r in by.items():
            if m == method and n == full_n:
                out.append(
                    target(
                        f"{method} query at {n:,} x {dim}", r["median_ms"], f"< {limit:g} ms", r["median_ms"] < limit
                    )
                )
    ns = sorted({(n, dim) for n, dim, _ in by})
    for method in ("cosine", "euclidean", "logreg"):  # linear or better in N, at a fixed dimension
        for dim in sorted({d for _, d in ns}):
            pts = sorted((n, by[(n, d, method)]["median_ms"]) for n, d in ns if d == dim and (n, d, method) in by)
            for (n0, t0), (n1, t1) in zip(pts, pts[1:]):
                ratio, size = t1 / t0, n1 / n0
                out.append(
                    target(
                        f"{method} scaling {n0:,} -> {n1:,} x {dim} ({size:.1f}x the vectors)",
                        ratio,
                        f"time ratio <= {1.25 * size:.1f} (linear +25%)",
                        ratio <= 1.25 * size,
                        unit="x",
                    )
                )
    for n, dim in ns:
        if (n, dim, "logreg") in by and (n, dim, "euclidean") in by:
            ratio = by[(n, dim, "logreg")]["median_ms"] / by[(n, dim, "euclidean")]["median_ms"]
            out.append(
                target(
                    f"logreg / euclidean time at {n:,} x {dim}",
                    ratio,
                    "<= 3 (one matrix product)",
                    ratio <= 3.0,
                    unit="x",
                )
            )
    for r in rows:
        out.append(
            target(
                f"vectorised faster than naive: {r['method']} at {r['n']:,} x {r['dim']}",
                r["speedup"],
                "> 1",
                r["speedup"] > 1,
                unit="x",
            )
        )
    return out


def latency_section(
    cfg: BenchmarkConfig, data: DataCache, log: Log
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Latency rows and memory rows for every configured gallery (learned methods fitted on random-label pairs: their
    cost does not depend on the labels)."""
    latency: dict[str, Any] = {"k": cfg.k, "task": "type", "rows": []}
    memory: dict[str, Any] = {"rows": []}
    for g in cfg.galleries:
        vectors, _, note = data.take(g.key)
        learned = [m for m in g.methods if get_method(m).learned]
        if learned:
            log(f"latency: fitting {', '.join(learned)} on random-label pairs of {len(vectors):,} x {g.dim}")
            classifiers = synthetic_classifiers(vectors, learned, cfg.classifier_pairs, cfg.seed)
            clf_note = f"fitted on {cfg.classifier_pairs:,} random-label pairs (timing only)"
        else:
            classifiers, clf_note = None, ""
        name = f"{len(vectors):,} x {vectors.shape[1]}"
        rows, mem = gallery_latency(name, vectors, g.methods, classifiers, cfg, note, log)
        for r in rows:
            r["classifier"] = clf_note if get_method(r["method"]).learned else ""
        latency["rows"] += rows
        memory["rows"].append({**mem, "data": note})
        del vectors, classifiers
    return latency, memory
