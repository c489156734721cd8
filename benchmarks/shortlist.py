"""How big the forest's shortlist must be: recall@10 of "cosine top-S from the store, then the forest
reranks" against the forest ranking the whole gallery, per shortlist size S.

    python -m benchmarks.shortlist --n 20000 --dim 64 --queries 40
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Optional, Sequence

import numpy as np

from cbir.index import EmbeddingIndex
from cbir.similarity.registry import get_method
from cbir.stores import open_store

from .data import synthetic_classifiers
from .measure import log_stderr


def labelled_vectors(n: int, dim: int, n_clusters: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters whose type is the cluster number mod 5: a forest trained on them learns something."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    lab = rng.integers(n_clusters, size=n)
    x = centres[lab] + 1.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return x.astype(np.float32), (lab % 5).astype(str)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000])
    args = p.parse_args(argv)
    x, types = labelled_vectors(args.n + args.queries, args.dim)
    g, q = x[: args.n], x[args.n :]
    log_stderr("fitting the forest on 2,000 pairs")
    clf = synthetic_classifiers(g, ["forest"], n_pairs=2000, keys=types)
    store = open_store("numpy", "cosine", args.dim, "cosine")
    store.upsert(np.arange(args.n), g, {"type": types[: args.n], "colour": types[: args.n], "label": types[: args.n]})
    log_stderr(f"forest over the whole gallery for {args.queries} queries")
    t0 = time.perf_counter()
    full = get_method("forest").score(q, EmbeddingIndex(g), task="type", classifiers=clf)
    full_ms = (time.perf_counter() - t0) * 1000 / len(q)
    tenth = -np.sort(-full, axis=1)[:, 9]
    rows = []
    for size in args.sizes:
        ids, _ = store.search(q, size)
        hits, t0 = [], time.perf_counter()
        for r in range(len(q)):
            sc = clf.score_pairs("forest", "type", np.broadcast_to(q[r], (size, args.dim)), g[ids[r]])
            top = ids[r][np.argsort(-sc, kind="stable")[:10]]
            hits.append(float(np.mean(full[r, top] >= tenth[r])))  # ties with the 10th best count as found
        rows.append((size, float(np.mean(hits)), (time.perf_counter() - t0) * 1000 / len(q)))
    print(f"`python -m benchmarks.shortlist {' '.join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))}`"
          f" ({args.n:,} x {args.dim}, forest over the whole gallery: {full_ms:.0f} ms per query)\n")
    print("| Shortlist S | recall@10 vs whole-gallery forest | rerank ms per query |\n|---|---|---|")
    for size, rec, ms in rows:
        print(f"| {size:,} | {rec:.3f} | {ms:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
