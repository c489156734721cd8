#!/usr/bin/env python
"""Held-out retrieval of an ensemble of two galleries' attribute classifiers (issue 9, push95).

The same images embedded by two backbones (e.g. frozen Lite2 and the adapted `tf_efficientnet_lite2_apparel`,
whose trunks up to blocks.5 are shared) each have attribute classifiers trained on the same training images;
the ensemble averages the two class-probability vectors per task, then scores pairs with the Bhattacharyya
overlap as the attribute method does ("both" = the product over the tasks, plus the joint colour_type head
when the kind has one). Retrieval is evaluate.py's: the same seeded 500 held-out queries, leave-one-out.

    python benchmarks/ensemble_eval.py --galleries G1 G2 --classifiers C1 C2 --kind attribute --out J
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.similarity.classifiers import PAIRS_FILE, ClassifierSet  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.similarity.evaluation import average_precision_at_k, relevance_matrix  # noqa: E402
from cbir.index import top_k  # noqa: E402
from cbir.gallery.labels import TASKS  # noqa: E402
from cbir.similarity.pairs import load_pairs  # noqa: E402


def ensemble_vectors(galleries: list[Gallery], sets: list[ClassifierSet], kind: str, task: str) -> np.ndarray:
    """sqrt of the averaged class probabilities of one (kind, task) over the members, (N, C)."""
    probs = []
    for g, cs in zip(galleries, sets):
        clf = cs.get(kind, task)
        if probs and clf.classes != sets[0].get(kind, task).classes:
            raise ValueError(f"the {kind}/{task} classifiers disagree on their classes")
        probs.append(clf.probabilities(g.embeddings, g.descriptors))
    return np.sqrt(np.mean(probs, axis=0)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--galleries", nargs="+", required=True, help="galleries of the same images, one per backbone")
    p.add_argument("--classifiers", nargs="+", required=True, help="classifier folders, one per gallery (same split)")
    p.add_argument("--kind", default="attribute", help="attribute; attribute_joint existed only in commits a7d3aba..b8bce25")
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    galleries = [Gallery.load(g) for g in args.galleries]
    sets = [ClassifierSet.load(c) for c in args.classifiers]
    splits = [load_pairs(Path(c) / PAIRS_FILE)[1] for c in args.classifiers]
    if any(not np.array_equal(s.test, splits[0].test) for s in splits):
        raise SystemExit("the classifier folders were trained on different splits")
    pool = splits[0].test
    rng = np.random.default_rng(args.seed)  # evaluate.py's query sample
    queries = np.sort(rng.choice(pool, size=args.queries, replace=False)) if args.queries < len(pool) else pool
    vec = {t: ensemble_vectors(galleries, sets, args.kind, t) for t in TASKS}
    if (args.kind, "both") in sets[0]:
        vec["joint"] = ensemble_vectors(galleries, sets, args.kind, "both")
    attrs = {t: galleries[0].attribute(t).astype(str) for t in TASKS}
    out = {"galleries": args.galleries, "classifiers": args.classifiers, "kind": args.kind,
           "n_queries": int(len(queries)), "retrieval": {}}
    for rel, parts in (("type", ["type"]), ("colour", ["colour"]), ("both", [*TASKS, *(["joint"] if "joint" in vec else [])])):
        scores = np.prod([vec[t][queries] @ vec[t].T for t in parts], axis=0)
        idx, _ = top_k(scores, args.k, exclude=queries)
        r = relevance_matrix({a: v[queries] for a, v in attrs.items()}, attrs, rel)
        r[np.arange(len(queries)), queries] = False
        ranked = np.take_along_axis(r, idx, axis=1)
        out["retrieval"][rel] = {f"map@{args.k}": float(average_precision_at_k(ranked, r.sum(1), args.k).mean()),
                                 "p@1": float(ranked[:, 0].mean()), f"p@{args.k}": float(ranked.mean())}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["retrieval"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
