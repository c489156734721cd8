#!/usr/bin/env python
"""Gallery -> balanced train/test pairs per task -> logistic regression, random forest and attribute classifiers
(skops), plus the hybrid's learned whitening (fitted on the training images and edited copies of them)."""

from __future__ import annotations

import argparse
import os
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.similarity.classifiers import CLASSIFIER_KINDS  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.gallery.labels import TASKS  # noqa: E402
from cbir.similarity.pairs import DEFAULT_PAIRS_PER_TASK, DEFAULT_TEST_FRACTION, MIN_IMAGES_PER_CLASS  # noqa: E402
from cbir.similarity.training import pair_counts, train  # noqa: E402
from cbir.similarity.whitening import DEFAULT_DIM  # noqa: E402
from cbir.cli import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", required=True, help="gallery folder or Hub dataset id")
    p.add_argument("--gallery-revision", default=os.environ.get("CBIR_GALLERY_REVISION") or None,
                   help="pin a Hub gallery to a branch, tag or commit (env CBIR_GALLERY_REVISION)")
    p.add_argument("--out", required=True, help="output folder for classifiers, cards and pairs")
    p.add_argument("--pairs", type=int, default=DEFAULT_PAIRS_PER_TASK,
                   help="pairs per task, train+test (default: %(default)s; a small gallery gets all the distinct "
                   f"balanced pairs it allows; every class needs at least {MIN_IMAGES_PER_CLASS} images)")
    p.add_argument("--test-fraction", type=float, default=DEFAULT_TEST_FRACTION, help="held-out share of images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", nargs="+", default=list(CLASSIFIER_KINDS), choices=list(CLASSIFIER_KINDS))
    p.add_argument("--tasks", nargs="+", default=None, choices=list(TASKS),
                   help="default: every task the gallery's labels give (type and colour for colour_type folders)")
    p.add_argument("--whitening-dim", type=int, default=DEFAULT_DIM,
                   help="dimensions of the hybrid's learned whitening (0 = none: its instance term is then a cosine)")
    p.add_argument("--device", default="auto", help="device embedding the edited copies the whitening learns from")
    args = p.parse_args(argv)

    gallery = Gallery.load(args.gallery, revision=args.gallery_revision)
    extractor = None
    if args.whitening_dim and "attribute" in args.kinds:  # the hybrid, which reads it, needs the attribute classifiers
        from cbir.search.loading import extractor_for

        extractor, _ = extractor_for(gallery.spec, device=args.device)
    run = train(gallery, args.kinds, args.tasks, args.pairs, args.test_fraction, args.seed,
                extractor=extractor, whitening_dim=args.whitening_dim)
    if run.classifiers.whitening is not None:
        print(f"learned whitening: {json.dumps(run.classifiers.whitening.card)}")
    print("image split:", json.dumps(run.split.summary()))
    drawn = pair_counts(run.pairs)
    if any(n < args.pairs for n in drawn.values()):
        print(f"pairs: asked for {args.pairs} per task; this gallery allows "
              + ", ".join(f"{n} for {task}" for task, n in drawn.items()) + ": drew those")
    for task, parts in run.pairs.items():
        sizes = ", ".join(f"{part} {len(p)} ({p.n_positive} positive)" for part, p in parts.items())
        print(f"pairs for {task}: {sizes}")
    for path in run.save(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
