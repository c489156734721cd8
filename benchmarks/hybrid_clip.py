#!/usr/bin/env python
"""Issue 18, instance R@1: does a saturating class term, a near-duplicate boost or a flip of the query let the
hybrid find the edited copy's source photo? Validation data only, split as scripts/tune_hybrid.py splits it
(test images untouched).

Variants of score = w_class * f(A) + w_cosine * cos + w_colour * D, with f(A) = min(A, tau) / tau: a class
agreement above tau counts as full agreement, so inside the right class the visual terms alone order the
results (tau = 1 is the shipped hybrid). Each row also reports the pair Pearson per task and P@1/P@10 of
class retrieval (task both), the constraints tune_hybrid.py chooses under, and the same with a query that is
the mean of the photo's and its mirror's embeddings (flip test-time augmentation; one more forward pass).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.embed.colour import colour_descriptor  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.images import load_image  # noqa: E402
from cbir.index import EmbeddingIndex, top_k  # noqa: E402
from cbir.search.engine import extractor_for  # noqa: E402
from cbir.similarity.evaluation import correlations, relevance_matrix  # noqa: E402
from cbir.similarity.instance import edited_copy  # noqa: E402
from cbir.similarity.pairs import DEFAULT_TEST_FRACTION, split_images  # noqa: E402
from scripts.tune_hybrid import components, pair_components, validation_setup  # noqa: E402

TAUS = (1.0, 0.9, 0.7, 0.5, 0.3)
WEIGHTS = ((0.75, 0.2, 0.05), (0.7, 0.25, 0.05), (0.6, 0.35, 0.05), (0.8, 0.15, 0.05))
BOOSTS = ((0.6, 0.5), (0.7, 0.25), (0.7, 0.5), (0.7, 1.0), (0.8, 0.25), (0.8, 0.5), (0.85, 0.5), (0.85, 1.0), (0.9, 1.0))  # (cosine threshold c0, weight) on the shipped hybrid


def clip(a: np.ndarray, tau: float) -> np.ndarray:
    """The saturating class term: agreement above tau is full agreement."""
    return np.minimum(a, tau) / tau


def boost(c: np.ndarray, c0: float) -> np.ndarray:
    """The near-duplicate term: how far the cosine is above c0, scaled to [0, 1] (0 for ordinary pairs)."""
    return np.maximum(c - c0, 0.0) / (1.0 - c0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", required=True)
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--instance", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/hybrid-clip.json")
    args = p.parse_args(argv)
    t0 = time.time()
    g = Gallery.load(args.gallery)
    split = split_images(g.labels, g.hashes, test_fraction=DEFAULT_TEST_FRACTION, seed=args.seed)
    fit, val, tasks, clf, rows = validation_setup(g, split, 0.2, args.seed)
    pos = {int(r): i for i, r in enumerate(rows)}
    index = EmbeddingIndex(g.embeddings[rows], g.descriptors[rows])
    rng = np.random.default_rng(args.seed)
    pairs = pair_components(g, clf, tasks, val, args.pairs, rng)
    q = np.array([pos[int(r)] for r in val])
    attrs = {t: np.asarray(g.attribute(t)).astype(str)[rows] for t in tasks}
    rel = relevance_matrix({t: v[q] for t, v in attrs.items()}, attrs, "both")
    rel[np.arange(len(q)), q] = False
    base = components(clf, "both", g.embeddings[rows][q], g.descriptors[rows][q], index)
    sub = np.sort(rng.choice(len(val), size=min(args.instance, len(val)), replace=False))
    extractor, _ = extractor_for(g.spec, device="cpu")
    copies = [edited_copy(g.image_bytes(int(r))[0], args.seed * 1_000_003 + int(r)) for r in val[sub]]
    images = [load_image(c) for c in copies]
    q0 = extractor.embed_images(images)
    q1 = extractor.embed_images([ImageOps.mirror(i) for i in images])
    qd = np.stack([colour_descriptor(c, g.colour_spec) for c in copies])
    inst = {"single": components(clf, "both", q0, qd, index),
            "flip-mean": components(clf, "both", (q0 + q1) / 2, qd, index)}
    src = np.asarray(g.hashes).astype(str)[val[sub]]
    hashes = np.asarray(g.hashes).astype(str)[rows]

    grid = []
    for w in WEIGHTS:
        for tau in TAUS:
            row = {"w_class": w[0], "w_cosine": w[1], "w_colour": w[2], "tau": tau}
            row["pearson"] = {t: round(correlations(w[0] * clip(a, tau) + w[1] * c + w[2] * d, y)["pearson"], 4)
                              for t, (a, c, d, _w, y) in pairs.items()}
            sc = w[0] * clip(base[0], tau) + w[1] * base[1] + w[2] * base[2]
            sc[np.arange(len(q)), q] = -np.inf
            ranked = np.take_along_axis(rel, top_k(sc, 10)[0], 1)
            row["p@1"], row["p@10"] = round(float(ranked[:, 0].mean()), 4), round(float(ranked.mean()), 4)
            for name, (a, c, d, _w) in inst.items():
                found = hashes[top_k(w[0] * clip(a, tau) + w[1] * c + w[2] * d, 5)[0]] == src[:, None]
                row[f"instance_r@1_{name}"] = round(float(found[:, 0].mean()), 4)
                row[f"instance_r@5_{name}"] = round(float(found.any(1).mean()), 4)
            grid.append(row)
            print(json.dumps(row), flush=True)
    w = WEIGHTS[0]
    for c0, wb in BOOSTS:  # score = shipped hybrid + wb * boost(cos): only near-duplicates move
        row = {"w_class": w[0], "w_cosine": w[1], "w_colour": w[2], "tau": 1.0, "boost_c0": c0, "boost_w": wb}
        row["pearson"] = {t: round(correlations(w[0] * a + w[1] * c + w[2] * d + wb * boost(c, c0), y)["pearson"], 4)
                          for t, (a, c, d, _w, y) in pairs.items()}
        sc = w[0] * base[0] + w[1] * base[1] + w[2] * base[2] + wb * boost(base[1], c0)
        sc[np.arange(len(q)), q] = -np.inf
        ranked = np.take_along_axis(rel, top_k(sc, 10)[0], 1)
        row["p@1"], row["p@10"] = round(float(ranked[:, 0].mean()), 4), round(float(ranked.mean()), 4)
        for name, (a, c, d, _w) in inst.items():
            found = hashes[top_k(w[0] * a + w[1] * c + w[2] * d + wb * boost(c, c0), 5)[0]] == src[:, None]
            row[f"instance_r@1_{name}"] = round(float(found[:, 0].mean()), 4)
            row[f"instance_r@5_{name}"] = round(float(found.any(1).mean()), 4)
        grid.append(row)
        print(json.dumps(row), flush=True)
    out = {"command": "python benchmarks/hybrid_clip.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
           "fit_images": int(len(fit)), "validation_images": int(len(val)), "instance_queries": int(len(sub)),
           "seconds": round(time.time() - t0, 1), "grid": grid}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
