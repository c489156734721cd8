"""Embedding throughput per batch size and worker count, and one upload's end-to-end time per stage."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from cbir.index import EmbeddingIndex, top_k
from cbir.similarity.registry import get_method

from .config import BenchmarkConfig
from .data import synthetic_vectors
from .measure import Log, log_stderr, summarize_ms

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
            _, kept, errors, _ = extractor.embed_files(list(sources), batch_size=b, num_workers=w, progress=False)
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
    from cbir.images import load_image

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


def end_to_end_section(
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
