#!/usr/bin/env python
"""Benchmark query latency (vs a naive loop), HNSW approximate search, memory, embedding throughput and end-to-end
upload time; prints one markdown report, writes JSON. The served app: light_client.py and soak.py."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import BenchmarkConfig, log_stderr, render_markdown, run_benchmark, write_json  # noqa: E402
from cbir.gallery.dataset import IMAGE_EXTENSIONS  # noqa: E402


def list_images(root: Path) -> list[Path]:
    """Image files under `root` (any depth), sorted; no decoding or hashing."""
    if not root.is_dir():
        raise SystemExit(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise SystemExit(f"no image files under {root}")
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes and 2 repeats (seconds; for smoke runs)")
    p.add_argument(
        "--gallery",
        help="saved real gallery folder (cbir.gallery.dataset.Gallery): real latency rows and the HNSW run on its "
        "PCA-whitened vectors; without it generated vectors stand in and that run reports 'skipped'",
    )
    p.add_argument(
        "--images",
        help="folder of real image files for the embedding and end-to-end sections (default: generated garment images)",
    )
    p.add_argument("--out", default="results/benchmark.json", help="JSON report path (default: %(default)s)")
    p.add_argument("--md", help="also write the markdown report here (default: the --out path with .md)")
    p.add_argument("--no-md", action="store_true", help="do not write the markdown file (still printed)")
    p.add_argument("--repeats", type=int, help="single-query latency samples per method (default 50; --quick 2)")
    p.add_argument("--naive-budget", type=float, help="seconds per naive loop before extrapolating (default 3)")
    p.add_argument("--embed-images", type=int, help="images per embedding-throughput run (default 192)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, splits and models (default: %(default)s)")
    args = p.parse_args(argv)

    overrides = {"seed": args.seed}
    overrides |= {k: v for k, v in (("repeats", args.repeats),
                                    ("naive_budget_s", args.naive_budget), ("embed_images", args.embed_images)) if v is not None}
    cfg = (BenchmarkConfig.quick if args.quick else BenchmarkConfig.full)(**overrides)

    gallery = None
    if args.gallery:
        from cbir.gallery.dataset import Gallery

        log_stderr(f"loading gallery {args.gallery}")
        gallery = Gallery.load(args.gallery)
        _ = gallery.embeddings  # read once, before any timing
    images = list_images(Path(args.images)) if args.images else None
    command = "python " + shlex.join([Path(sys.argv[0]).as_posix(), *(sys.argv[1:] if argv is None else argv)])
    report = run_benchmark(cfg, real_gallery=gallery, image_sources=images, command=command)
    md = render_markdown(report)
    print(md)
    out = write_json(report, args.out)
    log_stderr(f"wrote {out}")
    if not args.no_md:
        md_path = Path(args.md) if args.md else out.with_suffix(".md")
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(md)
        log_stderr(f"wrote {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
