#!/usr/bin/env python
"""Fit the hybrid's learned whitening on a gallery's photos and edited copies of them, and add it to a classifier
folder (its manifest lists it). With --split-from, only the training images of that folder's split are used,
so the held-out photos stay unseen; the demo's classifiers get the whitening of the Apparel training split."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.cli import run  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.hub import fetch_file  # noqa: E402
from cbir.embed.spec import EmbeddingSpec  # noqa: E402
from cbir.similarity.classifiers import MANIFEST, PAIRS_FILE, ClassifierSet  # noqa: E402
from cbir.similarity.pairs import load_pairs  # noqa: E402
from cbir.similarity.training import fit_gallery_whitening  # noqa: E402
from cbir.similarity.whitening import DEFAULT_DIM, WHITENING_FILE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", required=True, help="gallery folder or Hub dataset id whose photos it learns from")
    p.add_argument("--into", required=True, help="classifier folder that gets whitening.npz (same backbone)")
    p.add_argument("--split-from", default=None, help="classifier folder whose pairs.npz split gives the training images")
    p.add_argument("--dim", type=int, default=DEFAULT_DIM)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    gallery = Gallery.load(args.gallery)
    rows = np.arange(len(gallery))
    if args.split_from:
        _, split, meta = load_pairs(fetch_file(args.split_from, PAIRS_FILE))
        if meta.get("gallery_size") != len(gallery):
            raise SystemExit(f"{args.split_from}'s split is of a gallery of {meta.get('gallery_size')} images, "
                             f"{args.gallery} has {len(gallery)}")
        rows = np.asarray(split.train)
    for clf in ClassifierSet.load(args.into).classifiers.values():  # the whitening must fit the classifiers' backbone
        EmbeddingSpec.from_dict(clf.card["backbone"]).check_compatible(gallery.spec)
    from cbir.search.engine import extractor_for

    extractor, _ = extractor_for(gallery.spec, device=args.device)
    whitening = fit_gallery_whitening(gallery, rows, extractor, args.dim)
    whitening.card["source"] = str(args.gallery) + (" (training split)" if args.split_from else "")
    manifest_path = Path(args.into) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    print(f"wrote {whitening.save(args.into)}")
    manifest_path.write_text(json.dumps({**manifest, "whitening": WHITENING_FILE}, indent=2) + "\n")
    print(f"wrote {manifest_path}\nlearned whitening: {json.dumps(whitening.card)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
