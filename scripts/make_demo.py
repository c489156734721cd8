#!/usr/bin/env python
"""Build the embedded demo gallery (`demo/`): generated garment images, embeddings and classifiers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.demo import DEMO_DIR, build_demo  # noqa: E402
from cbir.features import DEFAULT_MODEL  # noqa: E402
from cbir.cli import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=str(DEMO_DIR), help="output folder (default: %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--weights", default="random", help="'random' (seeded init), 'pretrained', or a weights file")
    p.add_argument("--per-class", type=int, default=5)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--pairs", type=int, default=300, help="pairs per task")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    gallery, written = build_demo(args.out, args.model, args.weights, args.per_class, args.size, args.pairs, args.seed)
    print(f"demo gallery: {len(gallery)} images, {gallery.spec.describe()} -> {Path(args.out) / 'gallery'}")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
