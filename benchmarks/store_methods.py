"""Every stored method on a real gallery: recall@k of each store's ranking against the in-process
engine's (cbir.similarity.registry over the whole gallery), per task, with and without a type filter, and the
p50 time of one store search. Queries are gallery images (themselves left out), with their colour
descriptors, so the attribute method sees what the app gives it.

    python -m benchmarks.store_methods --gallery G --classifiers C --methods attribute logreg \\
        --stores numpy faiss:flat faiss:hnsw "milvus:/tmp/m.db"
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Optional, Sequence

import numpy as np

from cbir.similarity.classifiers import ClassifierSet
from cbir.gallery.dataset import Gallery
from cbir.index import EmbeddingIndex
from cbir.similarity.registry import get_method
from cbir.stores import describe, open_gallery_store

from .measure import log_stderr

TASKS = ("type", "colour", "both")


def exact_scores(method: str, index: EmbeddingIndex, clf: Optional[ClassifierSet], q: np.ndarray,
                 qd: Optional[np.ndarray], task: str, rows: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    """The in-process scores of every gallery row per query (-inf: the query's own row, rows its filter drops;
    `mask` (Q, N))."""
    scores = np.array(get_method(method).score(q, index, task=task, classifiers=clf, query_descriptors=qd), np.float32)
    if mask is not None:
        scores[~mask] = -np.inf
    scores[np.arange(len(rows)), rows] = -np.inf
    return scores


def recall(found: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of the store's top-k whose in-process score reaches the in-process k-th best (ties count as found)."""
    kth = -np.sort(-scores, axis=1)[:, k - 1 : k]
    hit = [(scores[r, f[f >= 0]] >= kth[r] - 1e-6).sum() / max(1, np.isfinite(scores[r]).sum().clip(max=k))
           for r, f in enumerate(found)]
    return float(np.mean(hit))


def score_ratio(found: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Sum of the in-process scores of the store's top-k over the best possible sum: near 1 when the misses
    are near-ties (attribute scores of confident classifiers form plateaus of almost equal scores)."""
    best = np.where(np.isfinite(s := -np.sort(-scores, axis=1)[:, :k]), s, 0.0).sum(axis=1)
    got = np.array([np.where(np.isfinite(v := scores[r, f[f >= 0]]), v, 0.0).sum() for r, f in enumerate(found)])
    return float(np.mean(got / np.maximum(best, 1e-12)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gallery", required=True)
    p.add_argument("--classifiers", required=True)
    p.add_argument("--methods", nargs="+", default=["attribute"])
    p.add_argument("--stores", nargs="+", default=["numpy", "faiss:flat", "faiss:hnsw"])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args(argv)
    g = Gallery.load(args.gallery)
    clf = ClassifierSet.load(args.classifiers)
    index = EmbeddingIndex(g.embeddings, g.descriptors)
    rows = np.random.default_rng(0).choice(len(g), size=min(args.queries, len(g)), replace=False)
    q, qd = g.embeddings[rows], None if g.descriptors is None else g.descriptors[rows]
    ftype, qtypes = str(g.types[rows[0]]), np.asarray(g.types)[rows].astype(str)
    filters: dict[str, list[Optional[dict]]] = {  # per query: none, the query's own type, one fixed type
        "none": [None] * len(rows),
        "query's type": [{"type": [t]} for t in qtypes],
        f"type={ftype}": [{"type": [ftype]}] * len(rows),
    }
    masks = {name: None if f[0] is None else np.asarray(g.types)[None, :] == np.array([x["type"][0] for x in f])[:, None]
             for name, f in filters.items()}
    out = []
    load = os.getloadavg()[0]
    for uri in args.stores:
        log_stderr(f"filling {describe(uri)} with {len(g):,} rows")
        t0 = time.perf_counter()
        store = open_gallery_store(uri, g, clf, args.methods, progress=False)
        fill_s = time.perf_counter() - t0
        for method in args.methods:
            for task in TASKS:
                for fname, f in filters.items():
                    truth = exact_scores(method, index, clf, q, qd, task, rows, masks[fname])
                    found, times = [], []
                    for r in range(len(rows)):
                        t1 = time.perf_counter()
                        ids, _ = store.search(method, q[r], args.k, task=task, filters=f[r], exclude=[rows[r]],
                                              descriptors=None if qd is None else qd[r])
                        times.append((time.perf_counter() - t1) * 1000)
                        found.append(ids[0])
                    found = np.array(found)
                    out.append((describe(uri), method, task, fname, recall(found, truth, args.k),
                                score_ratio(found, truth, args.k), float(np.median(times)), fill_s))
        store.close()
    cmd = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"`python -m benchmarks.store_methods {cmd}` ({len(g):,} gallery images, {len(rows)} query images, "
          f"k = {args.k}; {os.cpu_count()} cores, load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)\n")
    print(f"| Store | Method | Task | Filter | recall@{args.k} vs in-process | score ratio | p50 ms per search | fill s |")
    print("|---|---|---|---|---|---|---|---|")
    for uri, method, task, fname, rec, ratio, ms, fill_s in out:
        print(f"| {uri} | {method} | {task} | {fname} | {rec:.3f} | {ratio:.4f} | {ms:.1f} | {fill_s:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
