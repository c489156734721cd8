"""Approximate search (FAISS HNSW) against exact numpy search: build time, recall@k and latency per efSearch."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from cbir.index import EmbeddingIndex, top_k
from cbir.similarity.registry import get_method

from .config import BenchmarkConfig
from .data import DataCache, participation_ratio
from .latency import query_latency
from .measure import MB, Log, log_stderr, rss_bytes, summarize_ms, target

def exact_top_k(vectors: np.ndarray, queries: np.ndarray, metric: str, k: int, batch: int = 32) -> np.ndarray:
    """Exact top-k indices (Q, k) via cbir.similarity.registry, in query batches to bound the (Q, N) scores."""
    index = EmbeddingIndex(vectors)
    m = get_method(metric)
    out = [top_k(m.score(queries[s : s + batch], index), k)[0] for s in range(0, len(queries), batch)]
    return np.concatenate(out)


def ann_benchmark(
    vectors: np.ndarray,
    queries: np.ndarray,
    metric: str,
    cfg: BenchmarkConfig,
    label: str,
    log: Log = log_stderr,
) -> dict[str, Any]:
    """HNSW build time, per-efSearch recall@k and single-query latency, against exact numpy search."""
    from .ann_index import ApproximateIndex, recall_at_k

    k = cfg.k
    n_lat = min(cfg.ann_repeats, len(queries))
    log(f"ann: {label}: exact top-{k} for {len(queries)} queries")
    truth = exact_top_k(vectors, queries, metric, k)
    exact_index = EmbeddingIndex(vectors)
    exact = query_latency(metric, exact_index, queries[: min(n_lat, max(cfg.repeats, 2))], k, warmup=1)
    exact_nbytes = exact_index.nbytes
    del exact_index
    rss0 = rss_bytes()
    log(f"ann: {label}: building HNSW (M={cfg.ann_m}, efConstruction={cfg.ann_ef_construction})")
    t0 = time.perf_counter()
    ann = ApproximateIndex("hnsw", m=cfg.ann_m, ef_construction=cfg.ann_ef_construction).build(vectors, metric)
    build_s = time.perf_counter() - t0
    rss1 = rss_bytes()
    rows = []
    for ef in cfg.ann_ef_search:
        ann.ef_search = ef
        idx, _ = ann.search(queries, k)
        ann.search(queries[0], k)  # warm-up
        times = []
        for q in queries[:n_lat]:
            t = time.perf_counter()
            ann.search(q, k)
            times.append(time.perf_counter() - t)
        stats = summarize_ms(times)
        rows.append(
            {
                "ef_search": ef,
                "recall": recall_at_k(idx, truth),
                **stats,
                "speedup": exact["median_ms"] / stats["median_ms"],
            }
        )
    return {
        "label": label,
        "n": int(len(vectors)),
        "dim": int(vectors.shape[1]),
        "metric": metric,
        "kind": "hnsw",
        "m": cfg.ann_m,
        "ef_construction": cfg.ann_ef_construction,
        "k": k,
        "queries": int(len(queries)),
        "effective_dim": participation_ratio(vectors),
        "build_s": build_s,
        "exact": exact,
        "exact_index_mb": exact_nbytes / MB,
        "ann_index_mb": ann.nbytes / MB,
        "rss_growth_mb": (rss1 - rss0) / MB,
        "rows": rows,
    }


def ann_section(cfg: BenchmarkConfig, data: DataCache, log: Log) -> dict[str, Any]:
    """One HNSW run per configured set, or why it was skipped."""
    try:
        from .ann_index import import_faiss

        import_faiss()
    except ImportError as e:
        for a in cfg.ann_sets:
            data.needed.remove(a.key)
        return {"skipped": str(e)}
    runs = []
    for a in cfg.ann_sets:
        if a.data == "real-pca" and data.real is None:
            data.needed.remove(a.key)
            runs.append({"label": f"{a.n:,} x {a.dim} real gallery PCA", "skipped": "no real gallery"})
            continue
        vectors, queries, note = data.take(a.key)
        if queries is not None:
            base, qnote = vectors, "held-out vectors from the same distribution"
        else:
            rng = np.random.default_rng(cfg.seed + 1)
            held = rng.choice(len(vectors), size=min(cfg.ann_queries, len(vectors) // 10), replace=False)
            queries, base = vectors[held], np.delete(vectors, held, axis=0)
            qnote = "held-out gallery images, removed from the index"
        run = ann_benchmark(base, queries, a.metric, cfg, f"{len(base):,} x {a.dim} {note}", log)
        runs.append({**run, "queries_note": qnote})
        del vectors, base, queries
    return {"runs": runs}


def ann_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    best = [r for r in run["rows"] if r["recall"] >= 0.9]
    if not best:
        return [
            target(
                f"HNSW recall@{run['k']} >= 0.9 at {run['label']}",
                max(r["recall"] for r in run["rows"]),
                ">= 0.9 at some efSearch",
                False,
                unit="",
            )
        ]
    r = min(best, key=lambda r: r["median_ms"])
    return [
        target(
            f"HNSW recall@{run['k']} >= 0.9 at {run['label']} (efSearch {r['ef_search']}: "
            f"{r['median_ms']:.2f} ms, {r['speedup']:.0f}x faster than exact)",
            r["recall"],
            ">= 0.9",
            True,
            unit="",
        )
    ]
