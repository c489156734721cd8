#!/usr/bin/env python
"""What one live /add costs as the gallery grows (issue 35, item 7): synthetic galleries of 10,000 and 100,000 items
with the demo's schema (1280-d float32 embeddings, 576-bin colour descriptors, a small image per row, ids and
metadata), one LiveGallery.add of one photo at a time, timed end to end: the new row packed, its shard written and
committed to the journal (fsync), the in-memory gallery grown and handed to the engine. The forward pass is a stub
(the same ~40 ms at every gallery size, benchmarks/latency.py), so the figure is the edit's own cost.

    python -m benchmarks.edits --sizes 10000 100000 --adds 7 --work /tmp/edits-bench --out results/edits.json

`--full-rewrite` also times the previous design (the whole gallery saved again per edit) at the smallest size."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.embed.colour import COLOUR_COLUMN, ColourSpec  # noqa: E402
from cbir.embed.spec import EmbeddingSpec  # noqa: E402
from cbir.gallery.dataset import ID_COLUMN, METADATA_COLUMN, Gallery, gallery_features  # noqa: E402
from cbir.gallery.live import LiveGallery, add_rows, save_atomically  # noqa: E402
from cbir.search.engine import SearchEngine  # noqa: E402

DIM = 1280


class StubExtractor:
    """Embeds any image as a fixed random vector: the edit's cost without the forward pass."""

    def __init__(self, spec: EmbeddingSpec) -> None:
        self.spec = spec

    def embed_images(self, images, batch_size: int = 32) -> np.ndarray:
        return np.random.default_rng(len(images)).standard_normal((len(images), DIM)).astype(np.float32)


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (i % 256, 80, 160)).save(buf, format="PNG")
    return buf.getvalue()


def synthetic_gallery(n: int, folder: Path, chunk: int = 20_000) -> Path:
    """A saved gallery of n synthetic rows (built chunk by chunk, so memory holds one chunk)."""
    colour = ColourSpec()
    spec = EmbeddingSpec.from_dict({"model": "synthetic", "weights": "random", "dim": DIM, "seed": 0,
                                    "data_config": {}, "dtype": "float32"})
    features = gallery_features(DIM, "float32", {"type", "colour", ID_COLUMN, METADATA_COLUMN})
    features[COLOUR_COLUMN] = datasets.List(datasets.Value("float32"), length=colour.dim)
    rng = np.random.default_rng(0)
    blob = _png(0)
    parts = []
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        parts.append(datasets.Dataset.from_dict({
            "image": [{"bytes": blob, "path": f"{s + i}.png"} for i in range(m)],
            "label": ["blue_dress"] * m, "colour": ["blue"] * m, "type": ["dress"] * m,
            ID_COLUMN: [f"item-{s + i}" for i in range(m)],
            METADATA_COLUMN: [json.dumps({"title": f"Item {s + i}", "price": 10.0}) for i in range(m)],
            "sha1": [f"{s + i:040x}" for i in range(m)], "path": [f"{s + i}.png" for i in range(m)],
            "embedding": rng.standard_normal((m, DIM), dtype=np.float32),
            COLOUR_COLUMN: rng.random((m, colour.dim), dtype=np.float32),
        }, features=features))
    Gallery(datasets.concatenate_datasets(parts), spec, colour).save(folder)
    return folder


def time_adds(folder: Path, adds: int) -> dict:
    gallery = Gallery.load(folder)
    engine = SearchEngine(gallery, StubExtractor(gallery.spec))
    live = LiveGallery(engine, folder)
    engine.gallery.embeddings, engine.gallery.descriptors, engine.gallery.ids  # what a served app has read already
    times = []
    for i in range(adds + 1):
        t0 = time.perf_counter()
        live.add([_png(i + 1)], ["red_dress"], [{"title": f"New {i}", "price": 1.0}])
        times.append(time.perf_counter() - t0)
    written = sum(f.stat().st_size for f in (folder / "edits").rglob("*") if f.is_file()) / (adds + 1)
    return {"items": len(gallery), "first_add_s": round(times[0], 4), "median_add_s": round(statistics.median(times[1:]), 4),
            "max_add_s": round(max(times[1:]), 4), "bytes_written_per_add": int(written)}


def time_full_rewrite(folder: Path, adds: int) -> dict:
    """The previous design: every add saves the whole gallery again (atomic swap)."""
    gallery = Gallery.load(folder)
    extractor = StubExtractor(gallery.spec)
    times = []
    for i in range(adds):
        t0 = time.perf_counter()
        gallery = add_rows(gallery, extractor, [_png(i + 1)], ["red_dress"])
        save_atomically(gallery, folder)
        gallery = Gallery.load(folder)
        times.append(time.perf_counter() - t0)
    return {"items": len(gallery) - adds, "median_add_s": round(statistics.median(times), 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--adds", type=int, default=7, help="timed adds per size (after one untimed first add)")
    p.add_argument("--work", required=True)
    p.add_argument("--full-rewrite", action="store_true", help="also time the previous whole-gallery rewrite")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    work = Path(args.work)
    rows = []
    for n in args.sizes:
        folder = work / f"g{n}"
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        synthetic_gallery(n, folder)
        print(f"built a synthetic {n}-item gallery in {time.perf_counter() - t0:.0f} s", flush=True)
        rows.append(time_adds(folder, args.adds))
        print(json.dumps(rows[-1]), flush=True)
        if args.full_rewrite and n == min(args.sizes):
            full = time_full_rewrite(folder, 3)
            rows[-1]["full_rewrite_median_add_s"] = full["median_add_s"]
            print(json.dumps(full), flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    report = {"command": "python -m benchmarks.edits " + " ".join(argv if argv is not None else sys.argv[1:]),
              "results": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
