#!/usr/bin/env python
"""One round of relevance feedback (Rocchio) on a real gallery: mAP@10 before and after, held-out queries.

The gallery's images are split with cbir.similarity.pairs.split_images (by image, stratified, de-duplicated by sha1):
the train part is what is searched, each test image is a query. The top-10 of each query is marked the
way a shopper would: results with the query's colour_type label are "more like this", the others "less
like this"; the query is moved with cbir.search.feedback (Rocchio) and searched again (the marked items stay
in the collection). Relevant = same colour_type ("both"), also reported for type and colour.

    flock /tmp/cbir-heavy.lock python benchmarks/feedback_gain.py --gallery /work/cache/apparel-lite2/gallery
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.similarity.evaluation import average_precision_at_k, relevance_matrix  # noqa: E402
from cbir.search.feedback import ALPHA, BETA, GAMMA, rocchio_rows  # noqa: E402
from cbir.index import EmbeddingIndex, top_k  # noqa: E402
from cbir.similarity.pairs import split_images  # noqa: E402
from cbir.similarity.registry import get_method  # noqa: E402


def run(gallery: Gallery, methods: list[str], k: int = 10, seed: int = 0, classifiers=None) -> dict:
    split = split_images(gallery.labels, gallery.hashes, seed=seed)
    vecs = gallery.embeddings
    base, queries = split.train, split.test
    index = EmbeddingIndex(vecs[base])
    attrs = {"type": gallery.types.astype(str), "colour": gallery.colours.astype(str)}
    g_attrs = {a: v[base] for a, v in attrs.items()}
    q_attrs = {a: v[queries] for a, v in attrs.items()}
    rel = {kind: relevance_matrix(q_attrs, g_attrs, kind) for kind in ("type", "colour", "both")}
    out: dict = {"k": k, "queries": int(len(queries)), "searched": int(len(base)), "methods": {}}
    for name in methods:
        m = get_method(name)
        t0 = time.perf_counter()
        q = vecs[queries]
        scores = m.score(q, index, task="both", classifiers=classifiers)
        idx, _ = top_k(scores, k)
        marks = np.take_along_axis(rel["both"], idx, axis=1)  # the shopper's marks: same colour_type or not
        top = index.vectors[idx]  # (Q, k, dim)
        n_pos, n_neg = marks.sum(1, keepdims=True), (~marks).sum(1, keepdims=True)
        pos_mean = (top * marks[..., None]).sum(1) / np.maximum(n_pos, 1)
        neg_mean = (top * (~marks)[..., None]).sum(1) / np.maximum(n_neg, 1)
        refined = rocchio_rows(q, pos_mean, neg_mean)
        idx2, _ = top_k(m.score(refined, index, task="both", classifiers=classifiers), k)
        res = {}
        for kind, r in rel.items():
            before = average_precision_at_k(np.take_along_axis(r, idx, axis=1), r.sum(1), k)
            after = average_precision_at_k(np.take_along_axis(r, idx2, axis=1), r.sum(1), k)
            res[kind] = {"map_before": float(before.mean()), "map_after": float(after.mean()),
                         "better": float((after > before).mean()), "worse": float((after < before).mean())}
        res["seconds"] = time.perf_counter() - t0
        out["methods"][name] = res
    return out


def markdown(result: dict) -> str:
    k = result["k"]
    lines = [f"| Method | Relevant = same | mAP@{k} before | mAP@{k} after one round | Queries better / worse |",
             "|---|---|---|---|---|"]
    for name, res in result["methods"].items():
        for kind in ("both", "type", "colour"):
            r = res[kind]
            lines.append(f"| {get_method(name).label} | {kind} | {r['map_before']:.3f} | {r['map_after']:.3f} | "
                         f"{r['better']:.0%} / {r['worse']:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gallery", required=True, help="an embedded gallery folder (Gallery.load)")
    p.add_argument("--methods", default="cosine,euclidean", help="comma-separated (default: %(default)s)")
    p.add_argument("--classifiers", default=None, help="a classifier folder, for logreg/forest")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the result as JSON here")
    a = p.parse_args(argv)
    gallery = Gallery.load(a.gallery)
    clf = None
    if a.classifiers:
        from cbir.similarity.classifiers import ClassifierSet

        clf = ClassifierSet.load(a.classifiers)
    result = run(gallery, a.methods.split(","), a.k, a.seed, clf)
    result.update(gallery=a.gallery, backbone=gallery.spec.describe(), weights=(ALPHA, BETA, GAMMA))
    print(f"{result['queries']} held-out queries against {result['searched']} images; {gallery.spec.describe()}; "
          f"Rocchio alpha, beta, gamma = {ALPHA}, {BETA}, {GAMMA}")
    print(markdown(result))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
