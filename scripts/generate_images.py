#!/usr/bin/env python
"""Write a generated `colour_type` image folder (garment silhouettes whose colour and shape are the labels)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.gallery.synthetic import DATASET_CLASSES, write_image_folder  # noqa: E402
from cbir.cli import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", help="output folder")
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", nargs="+", default=list(DATASET_CLASSES), help="colour_type folders to write")
    args = p.parse_args(argv)
    paths = write_image_folder(args.out, args.classes, args.per_class, args.size, args.seed)
    print(f"wrote {len(paths)} images in {len(args.classes)} class folders under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
