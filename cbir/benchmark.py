"""Benchmarks: query latency per method against a naive per-item loop, scale options (PCA-256,
float16 storage, FAISS HNSW), memory, embedding throughput, end-to-end query time and a load test
of a running app. `run_benchmark` returns one JSON-able report; `render_markdown` prints it.

Every function here measures what it is given; sizes come from a BenchmarkConfig (`full()` for
the real run, `quick()` for smoke runs and tests), so the same code runs at both scales.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence
from urllib.parse import urlsplit

import numpy as np

from .classifiers import ClassifierSet, PairClassifier
from .features import EmbeddingSpec
from .index import EmbeddingIndex, top_k
from .pairs import DEFAULT_PAIRS_PER_TASK, sample_pairs
from .reduction import PCAReduction, float16_error, float16_roundtrip
from .similarity import get_method

RANDOM_INIT_NOTE = (
    "The backbone is VGG16 with random-init weights (ImageNet weights are not available offline): speed, "
    "memory and recall numbers are real; correlations and mAP mean nothing in absolute terms, only the "
    "differences between representations of the same features say something."
)
LOCAL_HOST = "127.0.0.1"
MB = 1024.0 * 1024.0

Log = Callable[[str], None]


def log_stderr(msg: str) -> None:
    """Progress goes to stderr so stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class GallerySize:
    """One latency gallery: n vectors of dim columns; data "real" uses the real gallery when given."""

    n: int
    dim: int
    data: str = "isotropic"  # "real", "isotropic" (Gaussian) or "clustered" (see synthetic_vectors)
    methods: tuple[str, ...] = ("cosine", "euclidean", "logreg")

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.n, self.dim, self.data)


@dataclass(frozen=True)
class AnnSet:
    """One approximate-search run: an HNSW index over n vectors of dim columns for one metric."""

    n: int
    dim: int
    data: str = "clustered"  # "clustered", "isotropic" or "real-pca" (the real gallery after PCA)
    metric: str = "cosine"

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.n, self.dim, self.data)


@dataclass(frozen=True)
class BenchmarkConfig:
    """Sizes and repeat counts of one benchmark run."""

    galleries: tuple[GallerySize, ...]
    ann_sets: tuple[AnnSet, ...]
    repeats: int = 50  # single-query latency samples per (gallery, method)
    slow_repeats: int = 10  # ... for the random forest
    naive_budget_s: float = 3.0  # per (gallery, method); beyond it the naive loop is extrapolated
    k: int = 10
    classifier_pairs: int = 2000  # pairs for classifiers fitted on synthetic vectors
    ann_m: int = 32
    ann_ef_construction: int = 80
    ann_ef_search: tuple[int, ...] = (16, 32, 64, 128, 256)
    ann_queries: int = 200  # for recall
    ann_repeats: int = 100  # single-query latency samples
    pca_dim: int = 256
    n_pairs: int = DEFAULT_PAIRS_PER_TASK
    eval_queries: int = 500
    forest_eval_queries: int = 50
    embed_images: int = 192
    embed_batch_sizes: tuple[int, ...] = (1, 8, 32)
    embed_workers: tuple[int, ...] = (0, 2)
    e2e_repeats: int = 10
    load_url: Optional[str] = None
    load_requests: int = 200
    load_concurrency: int = 8
    load_time_limit_s: float = 300.0
    seed: int = 0

    @classmethod
    def full(cls, **overrides: Any) -> "BenchmarkConfig":
        """The real run: 11,385 and 100,000 x 4096-d, 1,000,000 x 256-d; about 10-15 minutes on 2 cores."""
        cfg = cls(
            galleries=(
                GallerySize(11_385, 4096, "real", ("cosine", "euclidean", "logreg", "forest")),
                GallerySize(100_000, 4096, "isotropic"),
                GallerySize(1_000_000, 256, "clustered"),
            ),
            ann_sets=(
                AnnSet(1_000_000, 256, "clustered", "cosine"),
                AnnSet(100_000, 256, "isotropic", "cosine"),
                AnnSet(11_385, 256, "real-pca", "cosine"),
            ),
        )
        return replace(cfg, **overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> "BenchmarkConfig":
        """Tiny sizes and 2 repeats: every section runs in seconds (for --quick and the tests)."""
        cfg = cls(
            galleries=(
                GallerySize(300, 64, "real", ("cosine", "euclidean", "logreg", "forest")),
                GallerySize(600, 64, "isotropic"),
                GallerySize(2_000, 32, "clustered"),
            ),
            ann_sets=(AnnSet(2_000, 32, "clustered", "cosine"), AnnSet(2_000, 32, "clustered", "euclidean")),
            repeats=2,
            slow_repeats=2,
            naive_budget_s=0.2,
            classifier_pairs=200,
            ann_ef_search=(32, 128),
            ann_queries=50,
            ann_repeats=5,
            pca_dim=16,
            n_pairs=200,
            eval_queries=20,
            forest_eval_queries=5,
            embed_images=8,
            embed_batch_sizes=(1, 4),
            embed_workers=(0,),
            e2e_repeats=2,
            load_requests=8,
            load_concurrency=2,
            load_time_limit_s=60.0,
        )
        return replace(cfg, **overrides)


# --------------------------------------------------------------------------------------------
# Measuring


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p95, mean, min and max in milliseconds of repeated timings given in seconds."""
    a = np.asarray(seconds, dtype=np.float64) * 1000.0
    if a.size == 0:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan"), "repeats": 0}
    return {
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "repeats": int(a.size),
    }


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def blas_info() -> list[dict[str, Any]]:
    """Loaded BLAS/OpenMP libraries and their thread counts (threadpoolctl), [] when unavailable."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "prefix", "filepath", "version", "num_threads", "threading_layer")
    return [{k: d.get(k) for k in keys if k in d} for d in threadpool_info()]


def machine_info() -> dict[str, Any]:
    """Cores, CPU, RAM, library versions and the BLAS numpy uses: what the timings depend on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "numpy": np.__version__,
    }
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
        with open("/proc/meminfo") as f:
            kb = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal:"))
        info["ram_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    if hasattr(os, "getloadavg"):
        info["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    for mod in ("torch", "sklearn", "faiss", "timm"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except ImportError:
            info[mod] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    info["blas"] = blas_info()
    numpy_blas = [d for d in info["blas"] if d.get("user_api") == "blas" and "numpy" in str(d.get("filepath", ""))]
    info["numpy_blas"] = numpy_blas or [d for d in info["blas"] if d.get("user_api") == "blas"][:1]
    return info


# --------------------------------------------------------------------------------------------
# Data


def synthetic_vectors(
    n: int, dim: int, kind: str = "isotropic", seed: int = 0, n_clusters: int = 1000, spread: float = 1.0
) -> np.ndarray:
    """(n, dim) float32 test vectors, written in row blocks to bound temporaries.

    "isotropic": standard Gaussian (the worst case for approximate search: no structure at all).
    "clustered": `n_clusters` Gaussian clusters with a 1/i eigenvalue spectrum (centres and spread
    both scaled by i^-1/2): a participation ratio (effective dimension) of about 23 at 256-d, a
    structured case, yet harder than the real random-init VGG16 gallery, whose spectrum decays faster.
    """
    if kind not in ("isotropic", "clustered"):
        raise ValueError(f"unknown synthetic data kind {kind!r}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    block = 65536
    if kind == "isotropic":
        for s in range(0, n, block):
            rng.standard_normal(out=out[s : s + block], dtype=np.float32)
        return out
    scale = (np.arange(1, dim + 1, dtype=np.float32) ** -0.5).astype(np.float32)
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32) * scale
    labels = rng.integers(n_clusters, size=n)
    for s in range(0, n, block):
        part = out[s : s + block]
        rng.standard_normal(out=part, dtype=np.float32)
        part *= np.float32(spread) * scale
        part += centres[labels[s : s + block]]
    return out


def participation_ratio(x: np.ndarray, sample: int = 20_000, seed: int = 0) -> float:
    """Effective dimension (sum of covariance eigenvalues)^2 / sum of their squares, on a row sample:
    how spread-out the data is, which is what makes approximate search hard."""
    rows = np.random.default_rng(seed).choice(len(x), size=min(sample, len(x)), replace=False)
    ev = np.linalg.eigvalsh(np.cov(np.asarray(x[np.sort(rows)], dtype=np.float64), rowvar=False))
    ev = np.clip(ev, 0.0, None)
    return float(ev.sum() ** 2 / max((ev**2).sum(), 1e-300))


def synthetic_classifiers(
    vectors: np.ndarray, kinds: Iterable[str], n_pairs: int = 2000, seed: int = 0, task: str = "type"
) -> ClassifierSet:
    """Classifiers fitted on random-label pairs of the first few thousand vectors: real fitted models
    whose scoring cost matches a trained gallery's (their predictions mean nothing)."""
    rng = np.random.default_rng(seed)
    n_img = int(min(len(vectors), max(4 * n_pairs, 200)))
    keys = rng.integers(0, 5, size=n_img).astype(str)
    pool = np.arange(n_img)
    pairs = sample_pairs(keys, pool, n_pairs, rng)
    spec = EmbeddingSpec(model="synthetic-vectors", weights="random", dim=int(vectors.shape[1]), seed=seed)
    sub = np.asarray(vectors[:n_img], dtype=np.float32)
    return ClassifierSet({(k, task): PairClassifier.fit(k, task, sub, pairs, pool, spec, seed=seed) for k in kinds})


# --------------------------------------------------------------------------------------------
# Query latency


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
                    _target(
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
                    _target(
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
                _target(
                    f"logreg / euclidean time at {n:,} x {dim}",
                    ratio,
                    "<= 3 (one matrix product)",
                    ratio <= 3.0,
                    unit="x",
                )
            )
    for r in rows:
        out.append(
            _target(
                f"vectorised faster than naive: {r['method']} at {r['n']:,} x {r['dim']}",
                r["speedup"],
                "> 1",
                r["speedup"] > 1,
                unit="x",
            )
        )
    return out


def _target(name: str, value: float, target: str, met: bool, unit: str = "ms") -> dict[str, Any]:
    return {"check": name, "value": float(value), "unit": unit, "target": target, "met": bool(met)}


# --------------------------------------------------------------------------------------------
# Approximate search


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, metric: str, k: int, batch: int = 32) -> np.ndarray:
    """Exact top-k indices (Q, k) via cbir.similarity, in query batches to bound the (Q, N) scores."""
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
    from .ann import ApproximateIndex, recall_at_k

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


# --------------------------------------------------------------------------------------------
# Representation: PCA-256 whitening and float16 storage versus the float32 baseline


def representation_effect(
    embeddings: np.ndarray,
    labels: np.ndarray,
    attributes: dict[str, np.ndarray],
    hashes: Optional[np.ndarray],
    spec: EmbeddingSpec,
    cfg: BenchmarkConfig,
    methods: Sequence[str] = ("cosine", "euclidean", "logreg", "forest"),
    log: Log = log_stderr,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluation numbers of the float32 baseline, float16 storage, PCA whitened and PCA + float16,
    all on the same split, test pairs and query images. Returns (report, artefacts for reuse)."""
    from .evaluation import pair_correlations, retrieval_metrics
    from .labels import TASKS
    from .training import fit_classifiers, split_and_pair

    split, pairs = split_and_pair(labels, hashes, {t: attributes[t] for t in TASKS}, n_pairs=cfg.n_pairs, seed=cfg.seed)
    test_pairs = {t: p["test"] for t, p in pairs.items()}
    rng = np.random.default_rng(cfg.seed)
    queries = np.sort(rng.choice(split.test, size=min(cfg.eval_queries, len(split.test)), replace=False))
    # the forest scores one query at a time (~0.1-0.5 s each at 11k images): a seeded random subset
    forest_queries = np.sort(rng.choice(queries, size=min(cfg.forest_eval_queries, len(queries)), replace=False))
    learned = [m for m in methods if get_method(m).learned]

    def fit_all(x: np.ndarray, variant_spec: EmbeddingSpec) -> ClassifierSet:
        log(f"representation: fitting {', '.join(learned)} per task on {x.shape[1]}-d")
        return fit_classifiers(x, pairs, split, variant_spec, learned, TASKS, seed=cfg.seed, progress=False)

    def evaluate_variant(
        name: str, x: np.ndarray, storage: str, classifiers: ClassifierSet, fit_s: float
    ) -> dict[str, Any]:
        index = EmbeddingIndex(x)
        res: dict[str, Any] = {
            "variant": name,
            "dim": int(x.shape[1]),
            "storage": storage,
            "bytes_per_vector": int(x.shape[1] * (2 if storage == "float16" else 4)),
            "classifier_fit_s": fit_s,
            "methods": {},
        }
        for m in methods:
            log(f"representation: evaluating {name} / {m}")
            corr = pair_correlations(m, x, test_pairs, classifiers)
            q = forest_queries if m == "forest" else queries
            retr = {rel: retrieval_metrics(m, index, attributes, q, rel, classifiers, k=cfg.k) for rel in TASKS}
            res["methods"][m] = {"correlation": corr, "retrieval": retr}
        return res

    variants = []
    t0 = time.perf_counter()
    base_clf = fit_all(embeddings, spec)
    variants.append(
        evaluate_variant(
            f"baseline {embeddings.shape[1]}-d float32", embeddings, "float32", base_clf, time.perf_counter() - t0
        )
    )
    f16 = float16_roundtrip(embeddings)
    variants.append(evaluate_variant(f"{embeddings.shape[1]}-d float16 storage", f16, "float16", base_clf, 0.0))
    del f16
    log(f"representation: fitting PCA-{cfg.pca_dim} (whitened) on {len(split.train)} training images")
    t0 = time.perf_counter()
    pca = PCAReduction.fit(embeddings[split.train], cfg.pca_dim, whiten=True, seed=cfg.seed)
    pca_fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reduced = pca.transform(embeddings)
    transform_ms_per_vector = (time.perf_counter() - t0) * 1000.0 / len(embeddings)
    total_var = float(np.var(embeddings[split.train].astype(np.float64), axis=0, ddof=1).sum())
    pca_spec = EmbeddingSpec.from_dict({**spec.to_dict(), "dim": cfg.pca_dim})
    t0 = time.perf_counter()
    pca_clf = fit_all(reduced, pca_spec)
    variants.append(
        evaluate_variant(f"PCA-{cfg.pca_dim} whitened float32", reduced, "float32", pca_clf, time.perf_counter() - t0)
    )
    variants.append(
        evaluate_variant(f"PCA-{cfg.pca_dim} whitened float16", float16_roundtrip(reduced), "float16", pca_clf, 0.0)
    )
    report = {
        "gallery_size": int(len(embeddings)),
        "split": split.summary(),
        "test_pairs": {t: len(p) for t, p in test_pairs.items()},
        "queries": int(len(queries)),
        "forest_queries": int(len(forest_queries)),
        "k": cfg.k,
        "pca": {
            "dim": cfg.pca_dim,
            "whiten": True,
            "fitted_on": "training-split images only (no test leakage)",
            "fit_s": pca_fit_s,
            "transform_ms_per_vector": transform_ms_per_vector,
            "explained_variance_ratio": pca.explained_variance_ratio(total_var),
            "effective_dim_before_whitening": float(
                pca.explained_variance.sum() ** 2 / max((pca.explained_variance**2).sum(), 1e-300)
            ),
        },
        "float16_error": float16_error(embeddings),
        "notes": [
            "float16 rows reuse the classifiers fitted on the float32 vectors of the same dimension "
            "(storage changes, models do not); PCA rows refit every classifier on the reduced vectors.",
            f"Retrieval: {len(queries)} held-out query images (forest: a random {len(forest_queries)} of them) "
            "against the whole gallery, leave-one-out.",
        ],
        "variants": variants,
    }
    return report, {"classifiers": base_clf, "reduced": reduced, "split": split}


# --------------------------------------------------------------------------------------------
# Embedding throughput and end-to-end


def embedding_throughput(
    extractor: Any, sources: Sequence[Any], batch_sizes: Sequence[int], workers: Sequence[int], log: Log = log_stderr
) -> list[dict[str, Any]]:
    """Images/s of `extractor.embed_files` (decode + preprocess + forward) per batch size and worker count.

    Worker start-up is inside the timing: it is part of what a build pays."""
    for src in sources:  # read every file once so the page cache, not the disk, serves all runs alike
        if isinstance(src, (str, os.PathLike)):
            Path(src).read_bytes()
    extractor.embed_images(list(sources[:1]), batch_size=1)  # warm-up, not timed
    rows = []
    for w in workers:
        for b in batch_sizes:
            log(f"embedding: {len(sources)} images, batch {b}, workers {w}")
            t0 = time.perf_counter()
            _, kept, errors = extractor.embed_files(list(sources), batch_size=b, num_workers=w, progress=False)
            dt = time.perf_counter() - t0
            rows.append(
                {
                    "batch_size": b,
                    "workers": w,
                    "images": int(len(kept)),
                    "errors": len(errors),
                    "seconds": dt,
                    "images_per_s": len(kept) / dt,
                }
            )
    return rows


def end_to_end(
    extractor: Any,
    uploads: Sequence[bytes],
    index: EmbeddingIndex,
    k: int = 10,
    repeats: int = 10,
    method: str = "cosine",
) -> dict[str, Any]:
    """One uploaded image (encoded bytes) to top-k: decode, preprocess, forward, search, per stage."""
    from .images import load_image

    m = get_method(method)
    stages: dict[str, list[float]] = {s: [] for s in ("decode", "preprocess", "forward", "search", "total")}
    for r in range(repeats + 1):  # the first pass warms caches and is dropped
        data = uploads[r % len(uploads)]
        t0 = time.perf_counter()
        img = load_image(data)
        t1 = time.perf_counter()
        batch = extractor.preprocess(img).unsqueeze(0)
        t2 = time.perf_counter()
        vec = extractor.embed_tensor(batch)[0]
        t3 = time.perf_counter()
        top_k(m.score(vec, index), k)
        t4 = time.perf_counter()
        if r == 0:
            continue
        for s, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            stages[s].append(v)
    return {
        "method": method,
        "k": k,
        "gallery_n": len(index),
        "dim": index.dim,
        "upload_kb_median": float(np.median([len(u) for u in uploads]) / 1024),
        "stages": {s: summarize_ms(v) for s, v in stages.items()},
    }


# --------------------------------------------------------------------------------------------
# Load test of a running app (127.0.0.1 only)


def check_local_url(url: str) -> str:
    """`url` if it points at 127.0.0.1 over http(s); anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname != LOCAL_HOST:
        raise ValueError(f"load tests only run against an app on {LOCAL_HOST} (http://{LOCAL_HOST}:PORT), not {url!r}")
    return url


def load_test(
    url: str,
    image_paths: Sequence[str | os.PathLike],
    n_requests: int = 200,
    concurrency: int = 8,
    time_limit_s: float = 300.0,
    request_timeout_s: float = 60.0,
    method: str = "cosine",
    task: str = "type",
    k: int = 10,
    api_name: str = "/search",
    log: Log = log_stderr,
) -> dict[str, Any]:
    """`n_requests` calls of the app's search endpoint from `concurrency` gradio_client clients.

    Bounded: no request starts after `time_limit_s`, none waits longer than `request_timeout_s`.
    One untimed warm-up call comes first."""
    check_local_url(url)
    if not image_paths:
        raise ValueError("the load test needs at least one image file to upload")
    from gradio_client import Client, handle_file

    def make_client() -> Any:
        return Client(url, verbose=False, download_files=False, analytics_enabled=False)

    def call(client: Any, i: int) -> Any:
        job = client.submit(handle_file(str(image_paths[i % len(image_paths)])), method, task, k, api_name=api_name)
        result = job.result(timeout=request_timeout_s)
        if isinstance(result, dict) and "results" in result and not result["results"]:
            raise ValueError("the app answered with no results")
        return result

    t0 = time.perf_counter()
    warm_client = make_client()
    t1 = time.perf_counter()
    warm_result = call(warm_client, 0)
    warmup_ms = (time.perf_counter() - t1) * 1000.0
    lock = threading.Lock()
    counter = iter(range(n_requests))
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + time_limit_s
    started = [0]

    def worker() -> None:
        try:
            client = make_client()
        except Exception as e:  # a client that cannot connect fails the requests it would have sent
            with lock:
                errors.append(f"client: {type(e).__name__}: {e}")
            return
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
                if i is not None:
                    started[0] += 1
            if i is None:
                return
            t = time.perf_counter()
            try:
                call(client, i + 1)
                ok = True
            except Exception as e:
                ok = False
                msg = f"{type(e).__name__}: {str(e)[:200]}"
            dt = time.perf_counter() - t
            with lock:
                if ok:
                    latencies.append(dt)
                else:
                    errors.append(msg)

    log(f"load test: {n_requests} requests, {concurrency} clients -> {url}{api_name}")
    t_run = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=max(0.0, deadline - time.perf_counter()) + request_timeout_s + 5)
    wall = time.perf_counter() - t_run
    stats = summarize_ms(latencies)
    return {
        "url": url,
        "api_name": api_name,
        "args": {"method": method, "task": task, "k": k},
        "requests": n_requests,
        "concurrency": concurrency,
        "sent": started[0],
        "ok": len(latencies),
        "failed": len(errors),
        "not_sent": n_requests - started[0],
        "errors": sorted(set(errors))[:5],
        "wall_s": wall,
        "requests_per_s": len(latencies) / wall if wall > 0 else float("nan"),
        "warmup_ms": warmup_ms,
        "client_connect_ms": (t1 - t0) * 1000.0,
        "result_type": type(warm_result).__name__,
        "results_per_response": len(warm_result["results"])
        if isinstance(warm_result, dict) and "results" in warm_result
        else None,
        **stats,
    }


# --------------------------------------------------------------------------------------------
# The whole run


class CpuMeter:
    """Wall time of a span, CPU this process (and its reaped children) used, and CPU every other
    process used: a benchmark section shared with other work shows up as other_share > 0."""

    def __enter__(self) -> "CpuMeter":
        self._t, self._busy, self._own = time.perf_counter(), machine_busy_s(), own_cpu_s()
        return self

    def __exit__(self, *exc: Any) -> None:
        wall = time.perf_counter() - self._t
        own = own_cpu_s() - self._own
        busy = machine_busy_s()
        other = None if busy is None or self._busy is None else max(0.0, busy - self._busy - own)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.result = {
            "wall_s": wall,
            "own_cpu_s": own,
            "other_cpu_s": other,
            "other_share": None if other is None or wall <= 0 else other / (wall * cores),
        }


def machine_busy_s() -> Optional[float]:
    """CPU-seconds all processes have used since boot (Linux /proc/stat), None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU-seconds of this process plus its finished children (DataLoader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_benchmark(
    cfg: BenchmarkConfig,
    real_gallery: Any = None,
    image_sources: Optional[Sequence[Any]] = None,
    extractor: Any = None,
    command: str = "",
    log: Log = log_stderr,
) -> dict[str, Any]:
    """Every section in turn; a section that cannot run says why under "skipped" instead of numbers.

    `real_gallery` is a cbir.data.Gallery (or None), `image_sources` image files for the embedding
    section (None: generated garments), `extractor` a FeatureExtractor (None: VGG16 random init).
    """
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "meta": {
            "command": command,
            "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "config": _jsonable(asdict(cfg)),
            "notes": [RANDOM_INIT_NOTE],
            "sections": {},
        },
        "machine": machine_info(),
    }
    sections = report["meta"]["sections"]
    real = _real_data(real_gallery)
    if real is not None:
        report["meta"]["real_gallery"] = {
            "n": int(len(real["embeddings"])),
            "dim": int(real["embeddings"].shape[1]),
            "backbone": real["spec"].describe(),
        }

    with tempfile.TemporaryDirectory(prefix="cbir-bench-") as tmp_name:
        sources, source_note = _image_sources(image_sources, cfg.embed_images, cfg.seed, Path(tmp_name))
        # 1. embedding throughput and end-to-end (first: forks DataLoader workers while the process is small)
        with CpuMeter() as meter:
            if extractor is None:
                from .features import FeatureExtractor

                log("embedding: creating VGG16 (random init) on CPU")
                extractor = FeatureExtractor("vgg16.tv_in1k", weights="random", device="cpu", seed=0)
            report["embedding"] = {
                "model": extractor.spec.describe(),
                "images": source_note,
                "rows": embedding_throughput(extractor, sources, cfg.embed_batch_sizes, cfg.embed_workers, log),
            }
            report["end_to_end"] = _end_to_end_section(extractor, sources, real, cfg, log)
        sections["embedding + end-to-end"] = meter.result
        # 2. load test of a running app (its CPU shows as "other processes" here, as it should)
        with CpuMeter() as meter:
            report["load_test"] = _load_section(cfg, [str(s) for s in sources[:8]], log)
        if "skipped" not in report["load_test"]:
            sections["load test (app = other process)"] = meter.result

    # 3. representation effect (real gallery only); its classifiers serve the real-gallery latency rows
    artefacts: dict[str, Any] = {}
    with CpuMeter() as meter:
        if real is not None:
            rep, artefacts = representation_effect(
                real["embeddings"], real["labels"], real["attributes"], real["hashes"], real["spec"], cfg, log=log
            )
            report["representation"] = rep
        else:
            report["representation"] = {
                "skipped": "no real gallery (pass --gallery): no evaluation numbers without real labels"
            }
    if "skipped" not in report["representation"]:
        sections["representation"] = meter.result

    # 4. query latency and memory, then 5. approximate search, sharing generated data
    data = _DataCache(cfg, real, artefacts, log)
    with CpuMeter() as meter:
        report["latency"], report["memory"] = _latency_section(cfg, data, real, artefacts, log)
    sections["latency + memory"] = meter.result
    report["targets"] = latency_targets(report["latency"]["rows"], full_n=report["latency"]["rows"][0]["n"])
    with CpuMeter() as meter:
        report["ann"] = _ann_section(cfg, data, artefacts, log)
    sections["approximate search"] = meter.result
    data.clear()
    for run in report["ann"].get("runs", []):
        if "rows" in run:
            report["targets"] += _ann_targets(run)
    lt = report["load_test"]
    if "ok" in lt:
        ok = lt["failed"] == 0 and lt["not_sent"] == 0
        report["targets"].append(_target("load test failures", lt["failed"], "0 failures", ok, unit=""))
    report["meta"]["duration_s"] = time.perf_counter() - t_start
    report["meta"]["peak_rss_mb"] = peak_rss_bytes() / MB
    if hasattr(os, "getloadavg"):
        report["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return _jsonable(report)


def _real_data(gallery: Any) -> Optional[dict[str, Any]]:
    """The arrays the benchmark needs from a real Gallery, read once."""
    if gallery is None:
        return None
    return {
        "embeddings": np.asarray(gallery.embeddings, dtype=np.float32),
        "labels": np.asarray(gallery.labels).astype(str),
        "attributes": {
            "type": np.asarray(gallery.types).astype(str),
            "colour": np.asarray(gallery.colours).astype(str),
        },
        "hashes": gallery.hashes,
        "spec": gallery.spec,
    }


def _end_to_end_section(
    extractor: Any, sources: Sequence[Any], real: Optional[dict[str, Any]], cfg: BenchmarkConfig, log: Log
) -> dict[str, Any]:
    """End-to-end upload timing against the real gallery (random vectors of its size when absent)."""
    uploads = [Path(s).read_bytes() for s in sources[: max(cfg.e2e_repeats, 1)]]
    if real is not None and real["embeddings"].shape[1] == extractor.spec.dim:
        vectors, note = real["embeddings"], "real gallery"
    else:
        vectors = synthetic_vectors(cfg.galleries[0].n, extractor.spec.dim, "isotropic", cfg.seed)
        note = "random vectors"
    log(f"end-to-end: {cfg.e2e_repeats} uploads against {len(vectors):,} x {vectors.shape[1]} ({note})")
    result = end_to_end(extractor, uploads, EmbeddingIndex(vectors), cfg.k, cfg.e2e_repeats)
    return {**result, "gallery": note, "model": extractor.spec.describe()}


def _load_section(cfg: BenchmarkConfig, images: list[str], log: Log) -> dict[str, Any]:
    if not cfg.load_url:
        return {"skipped": "no --load-url given (the app is not part of this run)"}
    try:
        return load_test(cfg.load_url, images, cfg.load_requests, cfg.load_concurrency, cfg.load_time_limit_s, log=log)
    except Exception as e:  # the benchmark must finish without the app; the report says what went wrong
        return {"skipped": f"load test failed to run: {type(e).__name__}: {e}"}


class _DataCache:
    """Gallery vectors by (n, dim, data), each made once and freed once no later section needs it.

    Synthetic sets are drawn with cfg.ann_queries extra rows: the gallery is the first n rows and
    the rest are held-out queries from the same distribution (for approximate-search recall).
    """

    def __init__(self, cfg: BenchmarkConfig, real: Optional[dict[str, Any]], artefacts: dict[str, Any], log: Log):
        self.cfg, self.real, self.artefacts, self.log = cfg, real, artefacts, log
        self.needed = [g.key for g in cfg.galleries] + [a.key for a in cfg.ann_sets]
        self._cache: dict[tuple[int, int, str], tuple[np.ndarray, Optional[np.ndarray], str]] = {}

    def take(self, key: tuple[int, int, str]) -> tuple[np.ndarray, Optional[np.ndarray], str]:
        """(gallery vectors, held-out queries or None, description) for one use of `key`."""
        self.needed.remove(key)
        if key not in self._cache:
            for old in [k for k in self._cache if k not in self.needed]:
                del self._cache[old]  # free what no later use needs before allocating more
            self._cache[key] = self._make(key)
        out = self._cache[key]
        if key not in self.needed:
            del self._cache[key]
        return out

    def _make(self, key: tuple[int, int, str]) -> tuple[np.ndarray, Optional[np.ndarray], str]:
        n, dim, data = key
        real = self.real
        if data == "real" and real is not None and real["embeddings"].shape[1] == dim:
            return real["embeddings"], None, f"real gallery ({real['spec'].describe()})"
        if data == "real-pca":
            return self.artefacts["reduced"], None, f"real gallery, PCA-{dim} whitened"
        kind = "isotropic" if data == "real" else data
        self.log(f"data: generating {n:,} x {dim} {kind} vectors")
        full = synthetic_vectors(n + self.cfg.ann_queries, dim, kind, self.cfg.seed)
        note = f"synthetic {kind}"
        if data == "real":
            note += " (no real gallery)" if real is None else f" (the real gallery is not {dim}-d)"
        return full[:n], full[n:], note

    def clear(self) -> None:
        self._cache.clear()


def _latency_section(
    cfg: BenchmarkConfig, data: _DataCache, real: Optional[dict[str, Any]], artefacts: dict[str, Any], log: Log
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Latency rows and memory rows for every configured gallery."""
    latency: dict[str, Any] = {"k": cfg.k, "task": "type", "rows": []}
    memory: dict[str, Any] = {"rows": []}
    for g in cfg.galleries:
        vectors, _, note = data.take(g.key)
        learned = [m for m in g.methods if get_method(m).learned]
        if learned and real is not None and "classifiers" in artefacts and vectors is real["embeddings"]:
            classifiers, clf_note = artefacts["classifiers"], "fitted on the real gallery's training pairs"
        elif learned:
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


def _ann_section(cfg: BenchmarkConfig, data: _DataCache, artefacts: dict[str, Any], log: Log) -> dict[str, Any]:
    """One HNSW run per configured set, or why it was skipped."""
    try:
        from .ann import import_faiss

        import_faiss()
    except ImportError as e:
        for a in cfg.ann_sets:
            data.needed.remove(a.key)
        return {"skipped": str(e)}
    runs = []
    for a in cfg.ann_sets:
        if a.data == "real-pca" and "reduced" not in artefacts:
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


def _ann_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    best = [r for r in run["rows"] if r["recall"] >= 0.9]
    if not best:
        return [
            _target(
                f"HNSW recall@{run['k']} >= 0.9 at {run['label']}",
                max(r["recall"] for r in run["rows"]),
                ">= 0.9 at some efSearch",
                False,
                unit="",
            )
        ]
    r = min(best, key=lambda r: r["median_ms"])
    return [
        _target(
            f"HNSW recall@{run['k']} >= 0.9 at {run['label']} (efSearch {r['ef_search']}: "
            f"{r['median_ms']:.2f} ms, {r['speedup']:.0f}x faster than exact)",
            r["recall"],
            ">= 0.9",
            True,
            unit="",
        )
    ]


def _image_sources(image_sources: Optional[Sequence[Any]], n: int, seed: int, tmp: Path) -> tuple[list[Any], str]:
    """`n` image files: a seeded sample of the given ones, or generated garments written to `tmp`."""
    if image_sources:
        srcs = list(image_sources)
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(srcs), size=min(n, len(srcs)), replace=False))
        return [srcs[i] for i in pick], f"{len(pick)} of {len(srcs)} given image files (seeded sample)"
    from .synthetic import write_image_folder

    per_class = max(1, -(-n // 24))
    write_image_folder(tmp / "images", per_class=per_class, size=256, seed=seed)
    files = sorted(p for p in (tmp / "images").rglob("*") if p.is_file())[:n]
    return files, f"{len(files)} generated garment images (256 px; no real images given)"


def _jsonable(x: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays converted, NaN kept (Python's json writes NaN)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def write_json(report: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# Markdown


def _f(x: Any, digits: int = 2) -> str:
    """A number for a table: thousands separators, fixed digits, n/a for None/NaN."""
    if x is None:
        return "n/a"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{x:,}"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if v != v:
        return "n/a"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Markdown table lines."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _md_header(report: dict[str, Any]) -> list[str]:
    meta, mach = report["meta"], report["machine"]
    blas = ", ".join(
        f"{d.get('internal_api')} {d.get('version')} ({d.get('num_threads')} threads)"
        for d in mach.get("numpy_blas", [])
    )
    lines = [
        "# apparel-cbir benchmark",
        "",
        f"- Command: `{meta.get('command', '')}`",
        f"- Started {meta['started_utc']} UTC, took {_f(meta.get('duration_s'), 0)} s, "
        f"peak RSS {_f(meta.get('peak_rss_mb'), 0)} MB",
        f"- Machine: {mach.get('cpu_model', '?')}, {mach.get('usable_cores')} usable cores, "
        f"{mach.get('ram_gib', '?')} GiB RAM; 1-min load average {mach.get('loadavg_1m_at_start')} at start, "
        f"{mach.get('loadavg_1m_at_end')} at end",
        f"- numpy {mach['numpy']} with BLAS {blas or 'unknown'}; torch {mach.get('torch')} "
        f"({mach.get('torch_threads')} threads); scikit-learn {mach.get('sklearn')}; faiss {mach.get('faiss')}; "
        f"Python {mach['python']}",
    ]
    if "real_gallery" in meta:
        rg = meta["real_gallery"]
        lines.append(f"- Real gallery: {rg['n']:,} x {rg['dim']} ({rg['backbone']})")
    secs = meta.get("sections", {})
    if secs:
        parts = [
            f"{name} {_f(v['wall_s'], 0)} s"
            + ("" if v.get("other_share") is None else f" ({100 * v['other_share']:.0f}% of the cores)")
            for name, v in secs.items()
        ]
        lines.append(
            "- Sections, with the CPU other processes used meanwhile (a clean timing shows ~0% outside the load "
            "test): " + "; ".join(parts)
        )
    lines += [f"- Note: {note}" for note in meta.get("notes", [])]
    return lines


def _md_latency(report: dict[str, Any]) -> list[str]:
    lat = report.get("latency", {})
    rows = lat.get("rows", [])
    lines = [f"## Query latency: one query, whole gallery scored + top-{lat.get('k', 10)} (embedding excluded)", ""]
    headers = [
        "Gallery",
        "Data",
        "Method",
        "Median ms",
        "p95 ms",
        "ns/vector",
        "Gallery read GB/s",
        "Repeats",
        "Naive loop ms",
        "Naive timed on",
        "Speed-up",
        "Max score diff",
    ]
    lines += _table(
        headers,
        (
            [
                r["gallery"],
                r["data"],
                r["method"],
                _f(r["median_ms"]),
                _f(r["p95_ms"]),
                _f(r["median_ms"] * 1e6 / r["n"], 1),
                _f(r.get("gallery_read_gbps"), 1),
                r["repeats"],
                _f(r["naive_ms"], 0),
                f"{r['naive_items_timed']:,} items" + (" (extrapolated)" if r["naive_extrapolated"] else " (all)"),
                f"{_f(r['speedup'], 0)}x",
                f"{r['naive_max_abs_diff']:.1e}",
            ]
            for r in rows
        ),
    )
    classifier_notes = sorted({f"{r['gallery']} {r['method']}: {r['classifier']}" for r in rows if r.get("classifier")})
    lines += [
        "",
        "Naive loop = a Python loop calling the method's pair scorer on one gallery item at a time (plus a heap "
        "top-k); when it would exceed its time budget it is timed on the first items and extrapolated linearly. "
        "Max score diff = largest |naive - vectorised| score over the items the loop scored. Gallery read GB/s = "
        "the (N, dim) float32 matrix a query streams through (the vectors themselves for every method) "
        "divided by the median time: scoring is memory-bandwidth bound. Learned methods use "
        "the classifier of task `type`" + (": " + "; ".join(classifier_notes) if classifier_notes else "") + ".",
    ]
    return lines


def _md_targets(report: dict[str, Any]) -> list[str]:
    def row(t: dict[str, Any]) -> list[str]:
        digits = {"ms": 2, "x": 1}.get(t["unit"], 3)
        unit = f" {t['unit']}" if t["unit"] else ""
        return [t["check"], _f(t["value"], digits) + unit, t["target"], "yes" if t["met"] else "**NO**"]

    return ["## Targets", ""] + _table(["Check", "Measured", "Target", "Met"], map(row, report.get("targets", [])))


def _md_ann(report: dict[str, Any]) -> list[str]:
    ann = report.get("ann", {})
    lines = ["## Approximate search: FAISS HNSW vs exact numpy", ""]
    if "skipped" in ann:
        return lines + [f"Skipped: {ann['skipped']}"]
    headers = [
        "Index",
        "Metric",
        "Effective dim",
        "Build s",
        "efSearch",
        "Recall@10",
        "Median ms",
        "p95 ms",
        "Exact median ms",
        "Speed-up",
        "HNSW MB",
        "Exact index MB",
    ]
    rows = []
    for run in ann.get("runs", []):
        if "skipped" in run:
            rows.append([run["label"], "", f"skipped: {run['skipped']}"] + [""] * 9)
            continue
        for i, r in enumerate(run["rows"]):
            first = i == 0
            rows.append(
                [
                    f"{run['label']} (M={run['m']}, efConstruction={run['ef_construction']})" if first else "",
                    run["metric"] if first else "",
                    _f(run.get("effective_dim"), 0) if first else "",
                    _f(run["build_s"], 1) if first else "",
                    r["ef_search"],
                    f"{r['recall']:.3f}",
                    _f(r["median_ms"], 3),
                    _f(r["p95_ms"], 3),
                    _f(run["exact"]["median_ms"]) if first else "",
                    f"{_f(r['speedup'], 0)}x",
                    _f(run["ann_index_mb"], 0) if first else "",
                    _f(run["exact_index_mb"], 0) if first else "",
                ]
            )
    queries = dict.fromkeys(
        f"{run['queries']} queries ({run.get('queries_note', '')})" for run in ann.get("runs", []) if "queries" in run
    )
    return (
        lines
        + _table(headers, rows)
        + [
            "",
            "Recall@10 = share of the exact top-10 (numpy, same metric) that the index returns, over "
            + "; ".join(queries)
            + ". Latency is one query at a time; speed-up is against exact numpy on the same vectors. Effective dim "
            "= participation ratio of the covariance spectrum: the higher, the harder for any approximate index. "
            "Isotropic Gaussian data is the worst case (no structure: all distances look alike); the clustered "
            "data has a decaying spectrum; whitening flattens the real gallery's (see the scale-options section).",
        ]
    )


def _md_memory(report: dict[str, Any]) -> list[str]:
    headers = [
        "Gallery",
        "Data",
        "Vectors MB (float32)",
        "EmbeddingIndex.nbytes MB",
        "Index, shared arrays once MB",
        "Same vectors as float16 MB",
        "Process RSS MB",
        "RSS growth while querying MB",
    ]
    rows = (
        [
            r["gallery"],
            r["data"],
            _f(r["vectors_mb"], 1),
            _f(r["index_nbytes_mb"], 1),
            _f(r.get("index_unique_mb"), 1),
            _f(r["float16_vectors_mb"], 1),
            _f(r["rss_mb"], 0),
            _f(r["rss_growth_mb"], 0),
        ]
        for r in report.get("memory", {}).get("rows", [])
    )
    return (
        ["## Memory", ""]
        + _table(headers, rows)
        + [
            "",
            "EmbeddingIndex.nbytes counts the vectors plus the arrays derived once and cached (norms, classifier "
            "projections) after every method ran; the next column counts arrays that share memory once (a cache "
            "that is a view of the gallery). RSS growth = process RSS after minus before indexing and querying that "
            "gallery (its vectors were already in memory): what the caches and query temporaries kept.",
        ]
    )


def _md_representation(report: dict[str, Any]) -> list[str]:
    rep = report.get("representation", {})
    lines = ["## Scale options: effect of float16 storage and PCA whitening on evaluation numbers", ""]
    if "skipped" in rep:
        return lines + [f"Skipped: {rep['skipped']}"]
    k, pca, err = rep["k"], rep["pca"], rep["float16_error"]
    lines += [
        f"Same split ({rep['split']['train_images']:,} train / {rep['split']['test_images']:,} test images), same "
        f"held-out pairs ({', '.join(f'{t} {n:,}' for t, n in rep['test_pairs'].items())}) and {rep['queries']} "
        f"query images (forest: {rep['forest_queries']}). PCA-{pca['dim']} fitted on training images only keeps "
        f"{100 * pca['explained_variance_ratio']:.1f}% of the variance, with an effective dimension (participation "
        f"ratio) of {_f(pca.get('effective_dim_before_whitening'), 1)} before whitening and {pca['dim']} after "
        f"(fit {_f(pca['fit_s'], 1)} s, transform "
        f"{1000 * pca['transform_ms_per_vector']:.1f} µs/vector). float16 round-trip error: max abs "
        f"{err['max_abs']:.2e}, max relative (L2) {err['max_rel_l2']:.2e}.",
        "",
    ]
    base = rep["variants"][0]["methods"]
    headers = [
        "Representation",
        "Bytes/vector",
        "Method",
        "Pearson",
        "Spearman",
        f"mAP@{k} type",
        f"mAP@{k} colour",
        "Δ Pearson",
        f"Δ mAP@{k} type",
        f"Δ mAP@{k} colour",
    ]
    rows = []
    for v in rep["variants"]:
        for m, res in v["methods"].items():
            c, bc = res["correlation"]["overall"], base[m]["correlation"]["overall"]
            mt, mc = (res["retrieval"][rel][f"map@{k}"] for rel in ("type", "colour"))
            bt, bcol = (base[m]["retrieval"][rel][f"map@{k}"] for rel in ("type", "colour"))
            rows.append(
                [
                    v["variant"],
                    f"{v['bytes_per_vector']:,}",
                    m,
                    f"{c['pearson']:.3f}",
                    f"{c['spearman']:.3f}",
                    f"{mt:.3f}",
                    f"{mc:.3f}",
                    f"{c['pearson'] - bc['pearson']:+.3f}",
                    f"{mt - bt:+.3f}",
                    f"{mc - bcol:+.3f}",
                ]
            )
    return lines + _table(headers, rows) + [""] + [f"- {note}" for note in rep.get("notes", [])]


def _md_embedding(report: dict[str, Any]) -> list[str]:
    emb = report.get("embedding", {})
    lines = [f"## Embedding throughput on CPU ({emb.get('model', '')}; {emb.get('images', '')})", ""]
    rows = (
        [r["batch_size"], r["workers"], r["images"], _f(r["seconds"], 1), _f(r["images_per_s"], 2)]
        for r in emb.get("rows", [])
    )
    lines += _table(["Batch size", "DataLoader workers", "Images", "Seconds", "Images/s"], rows)
    e2e = report.get("end_to_end")
    if e2e:
        lines += [
            "",
            f"## End to end: one uploaded image -> top-{e2e['k']} ({e2e['method']}, {e2e['gallery_n']:,} x "
            f"{e2e['dim']} {e2e.get('gallery', '')}; median upload {e2e['upload_kb_median']:.0f} KB)",
            "",
        ]
        rows = ([s, _f(st["median_ms"]), _f(st["p95_ms"]), st["repeats"]] for s, st in e2e["stages"].items())
        lines += _table(["Stage", "Median ms", "p95 ms", "Repeats"], rows)
    return lines


def load_test_markdown(result: dict[str, Any]) -> str:
    """A load_test result as a titled markdown table."""
    return "\n".join(_md_load({"load_test": result}))


def _md_load(report: dict[str, Any]) -> list[str]:
    lt = report.get("load_test", {})
    lines = ["## Load test of the running app", ""]
    if "skipped" in lt:
        return lines + [f"Skipped: {lt['skipped']}"]
    lines += [
        f"{lt['requests']} `{lt['api_name']}` requests ({lt['args']}) from {lt['concurrency']} concurrent "
        f"gradio_client clients to {lt['url']}:",
        "",
    ]
    headers = [
        "Sent",
        "OK",
        "Failed",
        "Not sent (time limit)",
        "Median ms",
        "p95 ms",
        "Max ms",
        "Requests/s",
        "Wall s",
        "Warm-up ms",
    ]
    row = [
        lt["sent"],
        lt["ok"],
        lt["failed"],
        lt["not_sent"],
        _f(lt["median_ms"]),
        _f(lt["p95_ms"]),
        _f(lt.get("max_ms")),
        _f(lt["requests_per_s"]),
        _f(lt["wall_s"], 1),
        _f(lt["warmup_ms"]),
    ]
    lines += _table(headers, [row])
    if lt.get("errors"):
        lines += ["", "Errors: " + "; ".join(lt["errors"])]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The report as one markdown document: command and machine, then one titled section per benchmark."""
    sections = (_md_header, _md_latency, _md_targets, _md_ann, _md_memory, _md_representation, _md_embedding, _md_load)
    return "\n\n".join("\n".join(part(report)) for part in sections) + "\n"
