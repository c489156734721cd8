#!/usr/bin/env python
"""Fit the hybrid's learned whitening on a gallery's photos and edited copies of them, and add it to a classifier
folder (its manifest lists it). With --split-from, only the training images of that folder's split are used,
so the held-out photos stay unseen; the demo's classifiers get the whitening of the Apparel training split."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.cli import run  # noqa: E402
from cbir.similarity.whitening import DEFAULT_DIM  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", required=True, help="gallery folder or Hub dataset id whose photos it learns from")
    p.add_argument("--into", required=True, help="classifier folder that gets whitening.npz (same backbone)")
    p.add_argument("--split-from", default=None, help="classifier folder whose pairs.npz split gives the training images")
    p.add_argument("--dim", type=int, default=DEFAULT_DIM)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    from cbir.train.whitening import fit_whitening_into

    try:
        card = fit_whitening_into(args.gallery, args.into, split_from=args.split_from, dim=args.dim, device=args.device)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    print(f"wrote {Path(args.into)}/whitening.npz\nlearned whitening: {json.dumps(card)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
