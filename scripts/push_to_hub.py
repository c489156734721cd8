#!/usr/bin/env python
"""Push a gallery (dataset + embeddings) and/or a classifier folder to the Hugging Face Hub. Needs a token."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.gallery.dataset import push_gallery  # noqa: E402
from cbir.hub import push_folder  # noqa: E402
from cbir.cli import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", help="local gallery folder (from build_index.py)")
    p.add_argument("--dataset-repo", help="Hub dataset id to push the gallery to, e.g. user/apparel-gallery")
    p.add_argument("--classifiers", help="local classifier folder (from train_classifiers.py)")
    p.add_argument("--model-repo", help="Hub model id to push the classifiers to, e.g. user/apparel-cbir-classifiers")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN / cached login)")
    args = p.parse_args(argv)
    if not ((args.gallery and args.dataset_repo) or (args.classifiers and args.model_repo)):
        p.error("give --gallery with --dataset-repo, and/or --classifiers with --model-repo")
    if bool(args.gallery) != bool(args.dataset_repo) or bool(args.classifiers) != bool(args.model_repo):
        p.error("--gallery goes with --dataset-repo and --classifiers with --model-repo")
    if args.gallery:
        print(f"pushed gallery {args.gallery} to {push_gallery(args.gallery, args.dataset_repo, args.private, args.token)}")
    if args.classifiers:
        print(f"pushed classifiers {args.classifiers} to {push_folder(args.classifiers, args.model_repo, args.private, args.token)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
