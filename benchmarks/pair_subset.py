#!/usr/bin/env python
"""A smaller ablation on the same held-out pairs: a balanced sample of a classifier folder's pairs, the images
they use, and classifiers fitted on the sampled training pairs only.

For a backbone too slow to embed the whole gallery here (VGG16 at random init: about 0.5-3 photos/s on this
machine's 2 shared cores), embed just the sampled images and compare it with Lite2 on the very same subset:

    pick      classifier folder -> subset folder: images/<class>/<file> (symlinks), pairs.npz, subset.json
    select    a full gallery -> the subset's rows (e.g. Lite2, already embedded), same order as build_index
    train     a subset gallery + the subset's pairs -> a classifier folder benchmarks/ablation.py reads

The subset keeps the parent split (an image held out there is held out here) and re-indexes the pairs into the
subset gallery, whose order is build_index.py's on images/ (class folder, then file name: the parent's order).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.similarity.classifiers import CLASSIFIER_KINDS, PAIRS_FILE  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.similarity.pairs import ImageSplit, Pairs, load_pairs, save_pairs  # noqa: E402
from cbir.similarity.training import TrainingRun, fit_classifiers  # noqa: E402

SUBSET_FILE = "subset.json"


def sample_balanced(p: Pairs, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of n pairs of `p`, half positive and half negative, in their original order."""
    pos, neg = np.flatnonzero(p.label == 1), np.flatnonzero(p.label == 0)
    if n // 2 > min(len(pos), len(neg)):
        raise ValueError(f"only {len(pos)} positive / {len(neg)} negative pairs: cannot take {n // 2} of each")
    return np.sort(np.concatenate([rng.permutation(pos)[: n // 2], rng.permutation(neg)[: n // 2]]))


def subset_pairs(pairs: dict[str, dict[str, Pairs]], split: ImageSplit, n: dict[str, int], seed: int = 0
                 ) -> tuple[np.ndarray, dict[str, dict[str, Pairs]], ImageSplit]:
    """Sample n[part] balanced pairs per task and part; return the images they use (sorted parent indices),
    the sampled pairs re-indexed into that subset, and the parent split restricted to it."""
    rng = np.random.default_rng(seed)
    picked = {t: {part: (lambda p, i: Pairs(p.left[i], p.right[i], p.label[i]))(p, sample_balanced(p, n[part], rng))
                  for part, p in parts.items()} for t, parts in sorted(pairs.items())}
    images = np.unique(np.concatenate([np.concatenate([p.left, p.right]) for parts in picked.values()
                                       for p in parts.values()]))
    where = {int(g): i for i, g in enumerate(images)}
    remap = np.vectorize(lambda g: where[int(g)], otypes=[np.int64])
    local = {t: {part: Pairs(remap(p.left), remap(p.right), p.label) for part, p in parts.items()}
             for t, parts in picked.items()}
    train, test = np.intersect1d(images, split.train), np.intersect1d(images, split.test)
    if len(np.intersect1d(train, test)) or len(train) + len(test) != len(images):
        raise ValueError("the parent split does not cover the sampled pairs' images exactly once")
    sub_split = ImageSplit(remap(train), remap(test), split.n_duplicates, split.n_conflicting)
    return images, local, sub_split


def pick(args: argparse.Namespace) -> int:
    gallery = Gallery.load(args.gallery)
    pairs, split, meta = load_pairs(Path(args.classifiers) / PAIRS_FILE)
    images, local, sub_split = subset_pairs(pairs, split, {"train": args.train_pairs, "test": args.test_pairs}, args.seed)
    rel = np.asarray(gallery._column("path")).astype(str)[images]
    if sorted(rel) != list(rel):
        raise ValueError("the parent gallery is not in build_index.py's order (class folder, file name)")
    out = Path(args.out)
    root = out / "images"
    if root.exists():
        shutil.rmtree(root)
    for r in rel:
        link = root / r
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to((Path(args.images) / r).resolve())
    save_pairs(out / PAIRS_FILE, local, sub_split, {**meta, "subset_of": str(args.classifiers), "seed": args.seed,
                                                    "gallery_size": len(images)})
    (out / SUBSET_FILE).write_text(json.dumps({
        "parent_gallery": str(args.gallery), "parent_classifiers": str(args.classifiers), "seed": args.seed,
        "pairs_per_task": {"train": args.train_pairs, "test": args.test_pairs}, "images": len(images),
        "train_images": len(sub_split.train), "test_images": len(sub_split.test),
        "parent_indices": images.tolist(), "paths": rel.tolist()}, indent=1) + "\n")
    print(f"{len(images)} images ({len(sub_split.train)} train, {len(sub_split.test)} held out), "
          f"{args.train_pairs} train + {args.test_pairs} held-out pairs per task -> {out}")
    return 0


def select(args: argparse.Namespace) -> int:
    sub = json.loads((Path(args.subset) / SUBSET_FILE).read_text())
    g = Gallery.load(args.gallery)
    paths = np.asarray(g._column("path")).astype(str)
    if paths[sub["parent_indices"]].tolist() != sub["paths"]:
        raise ValueError(f"{args.gallery} does not hold the subset's images at its indices (another gallery?)")
    Gallery(g.dataset.select(sub["parent_indices"]), g.spec, g.colour_spec).save(args.out)
    print(f"wrote {len(sub['parent_indices'])} of {len(g)} rows -> {args.out}")
    return 0


def train(args: argparse.Namespace) -> int:
    g = Gallery.load(args.gallery)
    pairs, split, meta = load_pairs(Path(args.subset) / PAIRS_FILE)
    sub = json.loads((Path(args.subset) / SUBSET_FILE).read_text())
    paths = np.asarray(g._column("path")).astype(str).tolist()
    if paths != sub["paths"]:
        raise ValueError(f"{args.gallery} is not the subset's gallery (its images or their order differ)")
    tasks = sorted(pairs)
    cs = fit_classifiers(g.embeddings, pairs, split, g.spec, args.kinds, tasks, args.seed, progress=True,
                         attributes={t: g.attribute(t) for t in tasks}, descriptors=g.descriptors,
                         colour_spec=None if g.colour_spec is None else g.colour_spec.to_dict())
    for path in TrainingRun(cs, pairs, split, meta).save(args.out):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pick", help="sample pairs and link their images")
    a.add_argument("--gallery", required=True, help="the full gallery the classifier folder was trained on")
    a.add_argument("--classifiers", required=True, help="train_classifiers.py folder (its pairs.npz)")
    a.add_argument("--images", required=True, help="the image folder the gallery was built from")
    a.add_argument("--train-pairs", type=int, default=200, help="training pairs per task (half positive)")
    a.add_argument("--test-pairs", type=int, default=200, help="held-out pairs per task (half positive)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", required=True)
    a.set_defaults(fn=pick)
    s = sub.add_parser("select", help="the subset's rows of a full gallery")
    s.add_argument("--gallery", required=True)
    s.add_argument("--subset", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=select)
    t = sub.add_parser("train", help="classifiers on a subset gallery, from the subset's pairs")
    t.add_argument("--gallery", required=True)
    t.add_argument("--subset", required=True)
    t.add_argument("--kinds", nargs="+", default=["logreg", "attribute"], choices=list(CLASSIFIER_KINDS))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True)
    t.set_defaults(fn=train)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
