#!/usr/bin/env python
"""Evaluate every similarity method on the held-out pairs and images: markdown table + JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.similarity.classifiers import PAIRS_FILE, ClassifierSet  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.similarity.evaluation import correlation_markdown, evaluate, retrieval_markdown  # noqa: E402
from cbir.hub import fetch_file  # noqa: E402
from cbir.similarity.pairs import load_pairs  # noqa: E402
from cbir.similarity.registry import get_method, list_methods  # noqa: E402
from cbir.cli import run  # noqa: E402
from cbir.index import EmbeddingIndex  # noqa: E402
from cbir.similarity.instance import PictureMatcher, instance_markdown, instance_queries, instance_recall  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", required=True, help="gallery folder or Hub dataset id")
    p.add_argument("--gallery-revision", default=os.environ.get("CBIR_GALLERY_REVISION") or None,
                   help="pin a Hub gallery to a branch, tag or commit (env CBIR_GALLERY_REVISION)")
    p.add_argument("--classifiers", required=True, help="classifier folder or Hub model id (holds pairs.npz)")
    p.add_argument("--classifiers-revision", default=os.environ.get("CBIR_CLASSIFIERS_REVISION") or None,
                   help="pin Hub classifiers to a branch, tag or commit (env CBIR_CLASSIFIERS_REVISION)")
    p.add_argument("--out", default="results.json", help="JSON output path")
    p.add_argument("--methods", nargs="+", default=list_methods(), choices=list_methods())
    p.add_argument("--queries", type=int, default=500, help="held-out query images for retrieval (0 = all)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--instance", type=int, default=500,
                   help="held-out gallery photos whose edited copies query for themselves (instance R@1/R@5; 0 = off)")
    p.add_argument("--device", default="auto", help="device embedding the instance queries")
    args = p.parse_args(argv)

    gallery = Gallery.load(args.gallery, revision=args.gallery_revision)
    classifiers = ClassifierSet.load(args.classifiers, revision=args.classifiers_revision)
    classifiers.check_backbone(gallery.spec, gallery.colour_spec)
    pairs, split, meta = load_pairs(fetch_file(args.classifiers, PAIRS_FILE, revision=args.classifiers_revision))
    if meta.get("gallery_size") != len(gallery):
        raise SystemExit(f"pairs were drawn on a gallery of {meta.get('gallery_size')} images, this one has {len(gallery)}")
    test_pairs = {task: parts["test"] for task, parts in pairs.items()}
    attributes = {t: gallery.attribute(t) for t in gallery.tasks}
    results = evaluate(
        gallery.embeddings, attributes, test_pairs, split.test, args.methods, classifiers,
        n_queries=args.queries or None, k=args.k, seed=args.seed, descriptors=gallery.descriptors,
    )
    if args.instance:
        results["instance"] = instance_results(gallery, classifiers, split.test, args)
    results["gallery"] = {"size": len(gallery), "backbone": gallery.spec.to_dict()}
    results["pairs"] = {task: len(p) for task, p in test_pairs.items()}
    results["split"] = split.summary()
    labels = {m: get_method(m).label for m in args.methods}
    n_test = sum(len(p) for p in test_pairs.values())
    print(f"Held-out pairs: {n_test} ({', '.join(f'{t} {len(p)}' for t, p in test_pairs.items())}); "
          f"backbone: {gallery.spec.describe()}\n")
    print(correlation_markdown(results["correlation"], labels))
    print(f"\nRetrieval, {results['n_queries']} held-out query images against the whole gallery (leave-one-out):\n")
    print(retrieval_markdown(results["retrieval"], labels, args.k))
    if args.instance:
        inst = results["instance"]
        for task, methods in inst["tasks"].items():
            print(f"\nInstance retrieval, task {task}: edited copies of {inst['queries']} held-out gallery photos "
                  "(crop 70-90 %, flip, brightness/contrast 15 %, 200 px, JPEG q60) must find their source:\n")
            print(instance_markdown(methods, labels))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def instance_results(gallery: Gallery, classifiers: ClassifierSet, pool, args: argparse.Namespace) -> dict:
    """Instance R@1/R@5 per method and task: seeded edited copies of held-out gallery photos against the whole
    gallery, for the app's default task (type) and for both tasks; "task"/"methods" keep the both-task figures."""
    from cbir.search.loading import extractor_for

    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(np.asarray(pool), size=min(args.instance, len(pool)), replace=False))
    extractor, _ = extractor_for(gallery.spec, device=args.device)
    queries, descriptors = instance_queries(gallery, rows, extractor, seed=args.seed)
    index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
    tasks = ["type", "both"] if set(gallery.tasks) >= {"type", "colour"} else ["type"]
    same = PictureMatcher(gallery)
    by_task = {
        t: {m: instance_recall(m, index, queries, rows, gallery.hashes, t, classifiers, descriptors, same_picture=same)
            for m in args.methods}
        for t in tasks
    }
    return {"task": tasks[-1], "queries": int(len(rows)), "seed": args.seed, "methods": by_task[tasks[-1]],
            "tasks": by_task, "same_picture_mad": same.threshold}


if __name__ == "__main__":
    raise SystemExit(run(main))
