#!/usr/bin/env python
"""Rebuild the embedded demo (`demo/`): CC0 clothing photos, real EfficientNet-Lite2 embeddings, classifiers.

Needs the Apparel Images Dataset's classifiers for the same backbone (colour, and the Apparel candidate for
type), as written by: build_index.py <apparel-images> --out G && train_classifiers.py --gallery G --out C.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.demo import DEMO_DIR, build_demo  # noqa: E402
from cbir.features import DEFAULT_MODEL  # noqa: E402
from cbir.pairs import DEFAULT_PAIRS_PER_TASK  # noqa: E402
from cbir.cli import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", required=True, help="the CC0 clothing photos, one folder per type (e.g. ../shared/data/clothing-cc0)")
    p.add_argument("--apparel-classifiers", required=True, help="classifiers trained on the Apparel Images Dataset, same backbone")
    p.add_argument("--out", default=str(DEMO_DIR), help="output folder (default: %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--holdout-per-type", type=int, default=2, help="photos per type left out of the gallery")
    p.add_argument("--pairs", type=int, default=DEFAULT_PAIRS_PER_TASK, help="type pairs on the demo photos, train+test")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    gallery, report, written = build_demo(
        args.images, args.apparel_classifiers, args.out, args.model, "pretrained", args.holdout_per_type, args.pairs, args.seed
    )
    print(f"demo gallery: {len(gallery)} images, {gallery.spec.describe()} -> {Path(args.out) / 'gallery'}")
    print(f"held out of the gallery: {len(report['held_out'])} photos")
    print("type classifier source (ROC-AUC on the demo's held-out type pairs):")
    print(json.dumps(report["type_source"], indent=2))
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
