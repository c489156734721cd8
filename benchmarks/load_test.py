#!/usr/bin/env python
"""Load-test a running app on 127.0.0.1: N `/search` calls from C concurrent gradio_client clients,
bounded in count and time; prints success count and median/p95 latency, optionally writes JSON."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import check_local_url, load_test, load_test_markdown, log_stderr  # noqa: E402
from benchmarks.benchmark import list_images  # noqa: E402
from cbir.gallery.synthetic import garment_image  # noqa: E402


def pick_images(paths: list[str], limit: int = 8) -> list[Path]:
    """Image files from the given files and folders (folders searched recursively), up to `limit`."""
    out = [f for p in map(Path, paths) for f in (list_images(p)[:limit] if p.is_dir() else [p])]
    missing = [str(f) for f in out if not f.is_file()]
    if missing or not out:
        raise SystemExit(f"not image files or folders: {missing}" if missing else "no image files to upload")
    return out[:limit]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("images", nargs="*", help="image files or folders to upload (default: one generated garment)")
    p.add_argument("--url", default="http://127.0.0.1:7861", help="the running app (127.0.0.1 only)")
    p.add_argument("--requests", type=int, default=200, help="timed requests (at most 10,000)")
    p.add_argument("--concurrency", type=int, default=8, help="concurrent clients (at most 64)")
    p.add_argument("--time-limit", type=float, default=300.0, help="no request starts after this many seconds")
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds one request may take")
    p.add_argument("--method", default="cosine")
    p.add_argument("--task", default="type")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--api-name", default="/search")
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    try:
        check_local_url(args.url)
    except ValueError as e:
        p.error(str(e))
    if not 1 <= args.requests <= 10_000 or not 1 <= args.concurrency <= 64:
        p.error("--requests must be 1..10000 and --concurrency 1..64")

    if args.images:
        images = pick_images(args.images)
    else:  # one generated garment
        images = [Path(tempfile.mkdtemp(prefix="cbir-load-")) / "query.png"]
        garment_image("blue", "shirt", size=256).save(images[0])
    r = load_test(args.url, images, args.requests, args.concurrency, args.time_limit, args.request_timeout,
                  args.method, args.task, args.k, args.api_name, log=log_stderr)
    print(load_test_markdown(r))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(r, indent=2) + "\n")
    return 0 if r["failed"] == 0 and r["not_sent"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
