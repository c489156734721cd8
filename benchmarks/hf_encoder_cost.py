#!/usr/bin/env python
"""What a transformers encoder costs to serve (hf: backbones), measured offline on same-architecture models.

The Hub is unreachable here, so each model is built from its published architecture's config with random
weights and saved with save_pretrained: file size, parameters, resident memory after loading, load time,
image throughput and one text query's latency do not depend on the weight values (retrieval quality does,
and is not measured). Each model is measured in its own process so memory figures do not mix.

    flock /tmp/cbir-heavy.lock python benchmarks/hf_encoder_cost.py --out build/hf_cost
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# name -> (what it stands for on the Hub, how to build it)
ARCHS = {
    "clip-vit-b32": "patrickjohncyh/fashion-clip, openai/clip-vit-base-patch32 (CLIP ViT-B/32)",
    "siglip-b16-224": "google/siglip-base-patch16-224 (SigLIP ViT-B/16)",
    "dinov2-small": "facebook/dinov2-small (ViT-S/14)",
    "dinov2-base": "facebook/dinov2-base (ViT-B/14)",
}


def save_arch(name: str, folder: Path) -> Path:
    import transformers as tf
    from hf_tiny import tiny_tokenizer

    if name == "clip-vit-b32":
        model, proc = tf.CLIPModel(tf.CLIPConfig()), tf.CLIPImageProcessor()  # defaults are ViT-B/32, 224 px
    elif name == "siglip-b16-224":
        model, proc = tf.SiglipModel(tf.SiglipConfig()), tf.SiglipImageProcessor()  # defaults: B/16, 224 px
    else:
        width = {"dinov2-small": 384, "dinov2-base": 768}[name]
        cfg = tf.Dinov2Config(hidden_size=width, num_attention_heads=width // 64)
        model = tf.Dinov2Model(cfg)
        proc = tf.BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                                    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    if hasattr(model, "get_text_features"):
        tiny_tokenizer(64).save_pretrained(folder)  # a word-level stand-in: a short query is a handful of tokens
    return folder


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process in MB: per address space, so not inherited from the parent
    (getrusage's ru_maxrss survives exec and would report the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(folder: Path, n_images: int, batch_size: int) -> dict:
    import numpy as np
    import torch

    from cbir.embed.extractor import FeatureExtractor
    from scripts.synthetic import garment_image

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    ext = FeatureExtractor(f"hf:{folder}", device="cpu")
    load_s = time.perf_counter() - t0
    rss_loaded = _status_mb("VmRSS")
    images = [garment_image("red", "dress", 256, i) for i in range(n_images)]
    ext.embed_images(images[:batch_size], batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    vecs = ext.embed_images(images, batch_size=batch_size)
    img_s = n_images / (time.perf_counter() - t0)
    out = {
        "dim": ext.spec.dim,
        "params_m": sum(p.numel() for p in ext.model.parameters()) / 1e6,
        "weights_mb": sum(f.stat().st_size for f in folder.glob("*.safetensors")) / 1e6,
        "load_s": load_s,
        "rss_loaded_mb": rss_loaded,
        "img_per_s": img_s,
        "rss_peak_mb": _status_mb("VmHWM"),
        "finite": bool(np.isfinite(vecs).all()),
    }
    if ext.has_text:
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            ext.embed_text(["red summer dress"])
            times.append(time.perf_counter() - t0)
        out["text_ms"] = 1000 * statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="*", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default="", help="write results.json here too")
    p.add_argument("--_measure", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._measure:
        print(json.dumps(measure(Path(args._measure), args.images, args.batch_size)))
        return 0
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.archs:
            folder = save_arch(name, Path(tmp) / name)
            proc = subprocess.run(
                [sys.executable, __file__, "--_measure", str(folder), "--images", str(args.images),
                 "--batch-size", str(args.batch_size)], capture_output=True, text=True, check=True,
            )
            rows[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(name, rows[name], flush=True)
    print("\n| Architecture (stands for) | Width | Params | Weights file | RSS after load | Peak RSS | Load | Images/s | Text query |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        text = f"{r['text_ms']:.0f} ms" if "text_ms" in r else "no text tower"
        print(f"| {name} ({ARCHS[name]}) | {r['dim']} | {r['params_m']:.0f} M | {r['weights_mb']:.0f} MB | "
              f"{r['rss_loaded_mb']:.0f} MB | {r['rss_peak_mb']:.0f} MB | {r['load_s']:.1f} s | {r['img_per_s']:.1f} | {text} |")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
