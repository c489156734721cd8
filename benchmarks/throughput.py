"""Embedding throughput per runtime (torch default layout, torch channels_last, ONNX Runtime), the index build
as `build_index.py` runs it, and one upload's end-to-end time per stage, on real weights and real photos.

    python -m benchmarks.throughput --images ../shared/data/apparel-images --gallery GALLERY --out results/throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from cbir.gallery.dataset import IMAGE_EXTENSIONS, Gallery
from cbir.embed.extractor import DEFAULT_MODEL, FeatureExtractor
from cbir.index import EmbeddingIndex

from .embedding import embedding_throughput, end_to_end
from .measure import log_stderr, machine_info

ROOT = Path(__file__).resolve().parent.parent


class _DefaultLayout:
    """torch in the default (contiguous) memory layout: the baseline that channels_last and ONNX are compared with."""

    name = "torch (default layout)"

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval().to(memory_format=torch.contiguous_format)

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        return self.model(batch).float().numpy()


def _extractor(runtime: str, threads: Optional[int]) -> FeatureExtractor:
    if runtime == "torch-default":
        ext = FeatureExtractor(DEFAULT_MODEL, device="cpu", runtime="torch", threads=threads)
        ext.runtime = _DefaultLayout(ext.model)
        return ext
    if runtime == "openvino-int8":  # cbir.embed.quantize: an NNCF int8 model (its embeddings differ a little)
        return FeatureExtractor(DEFAULT_MODEL, device="cpu", runtime="openvino", threads=threads, quantization="int8")
    return FeatureExtractor(DEFAULT_MODEL, device="cpu", runtime=runtime, threads=threads)


def sample_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    rng = np.random.default_rng(seed)
    return [files[i] for i in np.sort(rng.choice(len(files), size=min(n, len(files)), replace=False))]


def time_build_index(images: Path, n_per_class: int, workers: int, quantize: str = "") -> dict[str, Any]:
    """Run scripts/build_index.py as a user would on a class-folder subset (symlinks), and read its images/s."""
    with tempfile.TemporaryDirectory(prefix="cbir-tp-") as tmp:
        sub = Path(tmp) / "images"
        n = 0
        for cls in sorted(p for p in images.iterdir() if p.is_dir()):
            (sub / cls.name).mkdir(parents=True)
            for f in sorted(cls.iterdir())[:n_per_class]:
                (sub / cls.name / f.name).symlink_to(f.resolve())
                n += 1
        cmd = [sys.executable, str(ROOT / "scripts" / "build_index.py"), str(sub), "--out", str(Path(tmp) / "g"),
               "--workers", str(workers)] + (["--quantize", quantize] if quantize else [])
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - t0
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("embedded "))
    return {"command": " ".join(cmd[1:]), "images": n, "workers": workers, "quantize": quantize, "wall_s": wall,
            "reported": line,
            "images_per_s": float(line.split("(")[1].split()[0])}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True, type=Path, help="folder of class folders of real photos")
    p.add_argument("--gallery", help="a real gallery (for the end-to-end search stage; default: random vectors)")
    p.add_argument("--n", type=int, default=512, help="images per throughput run")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    p.add_argument("--runtimes", nargs="+", default=["torch-default", "torch", "onnx"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--build-per-class", type=int, default=100, help="images per class for the build_index.py run (0: skip)")
    p.add_argument("--build-quantize", nargs="+", default=["none"], choices=["none", "int8"],
                   help="build_index.py runs: float (none) and/or --quantize int8")
    p.add_argument("--out", default="results/throughput.json")
    args = p.parse_args(argv)

    sources = sample_images(args.images, args.n)
    uploads = [f.read_bytes() for f in sources[:21]]
    if args.gallery:
        g = Gallery.load(args.gallery)
        index, note = EmbeddingIndex(g.embeddings), f"real gallery ({len(g)})"
    else:
        index, note = EmbeddingIndex(np.random.default_rng(0).standard_normal((11385, 1280)).astype(np.float32)), "random"
    report: dict[str, Any] = {"command": "python -m benchmarks.throughput " + " ".join(argv or sys.argv[1:]),
                              "machine": machine_info(), "load_before": os.getloadavg()[0], "runtimes": {}}
    for rt in args.runtimes:
        log_stderr(f"runtime {rt}")
        ext = _extractor(rt, args.threads)
        rows = embedding_throughput(ext, sources, args.batch_sizes, args.workers)
        e2e = end_to_end(ext, uploads, index, repeats=20)
        report["runtimes"][rt] = {"throughput": rows, "end_to_end": {**e2e, "gallery": note}}
        best = max(rows, key=lambda r: r["images_per_s"])
        log_stderr(f"  best {best['images_per_s']:.1f} img/s (batch {best['batch_size']}, workers {best['workers']}); "
                   f"upload end to end {e2e['stages']['total']['median_ms']:.0f} ms")
    if args.build_per_class:
        for q in args.build_quantize:
            for w in args.workers:
                log_stderr(f"build_index.py, {args.build_per_class} per class, workers {w}, quantize {q}")
                report.setdefault("build_index", []).append(
                    time_build_index(args.images, args.build_per_class, w, "" if q == "none" else q)
                )
    report["load_after"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    lines = ["| runtime | batch | workers | images/s |", "|---|---|---|---|"]
    for rt, r in report["runtimes"].items():
        for row in r["throughput"]:
            lines.append(f"| {rt} | {row['batch_size']} | {row['workers']} | {row['images_per_s']:.1f} |")
    lines += ["", "| runtime | decode | preprocess | forward | search | total (median / p95 ms) |", "|---|---|---|---|---|---|"]
    for rt, r in report["runtimes"].items():
        st = r["end_to_end"]["stages"]
        cells = [f"{st[s]['median_ms']:.1f}" for s in ("decode", "preprocess", "forward", "search")]
        lines.append(f"| {rt} | " + " | ".join(cells) + f" | {st['total']['median_ms']:.1f} / {st['total']['p95_ms']:.1f} |")
    for b in report.get("build_index", []):
        q = f", --quantize {b['quantize']}" if b.get("quantize") else ""
        lines.append(f"\nbuild_index.py ({b['images']} images, workers {b['workers']}{q}): {b['reported']}; wall {b['wall_s']:.1f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
