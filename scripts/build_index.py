#!/usr/bin/env python
"""Image folder (class folders: `colour_type/*.jpg` or any label) -> gallery dataset with embeddings, saved with save_to_disk."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.data import STORAGE_DTYPES, build_gallery, scan_image_folder  # noqa: E402
from cbir.features import DEFAULT_MODEL, FeatureExtractor  # noqa: E402
from cbir.cli import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("images", help="folder of class folders: colour_type (black_dress/) or any label (shoes/)")
    p.add_argument("--out", required=True, help="output folder for the gallery dataset")
    p.add_argument("--model", default=DEFAULT_MODEL, help="timm model name (default: %(default)s)")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--weights", default="pretrained", help="'pretrained' (Hub) or a local weights file")
    w.add_argument("--random-weights", action="store_true", help="random init (smoke runs and tests only)")
    p.add_argument("--seed", type=int, default=0, help="init seed with --random-weights")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes for decoding")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=STORAGE_DTYPES, help="embedding storage dtype")
    p.add_argument("--limit", type=int, default=0, help="embed only the first N images (quick runs)")
    args = p.parse_args(argv)

    records = scan_image_folder(args.images)
    if args.limit:
        records = records[: args.limit]
    weights = "random" if args.random_weights else args.weights
    extractor = FeatureExtractor(args.model, weights=weights, device=args.device, seed=args.seed)
    print(f"{len(records)} images in {len({r.label for r in records})} classes; backbone {extractor.spec.describe()} "
          f"on {extractor.device}")
    t0 = time.perf_counter()
    gallery, errors = build_gallery(records, extractor, args.batch_size, args.workers, args.dtype)
    elapsed = time.perf_counter() - t0
    out = gallery.save(args.out)
    print(f"embedded {len(gallery)} images in {elapsed:.1f} s ({len(gallery) / elapsed:.1f} img/s)")
    if errors:
        print(f"skipped {len(errors)} unreadable files:")
        for path, msg in sorted(errors.items()):
            print(f"  {path}: {msg}")
        (out / "skipped.json").write_text(json.dumps(errors, indent=2) + "\n")
    print(f"wrote gallery dataset to {out} (spec: {out / 'embedding_spec.json'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
