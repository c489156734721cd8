"""The whole benchmark run: every section in turn, one JSON-able report."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

from .ann import ann_section, ann_targets
from .config import BenchmarkConfig
from .data import DataCache, image_sources as pick_image_sources, real_data
from .embedding import embedding_throughput, end_to_end_section
from .latency import latency_section, latency_targets
from .measure import MB, RANDOM_INIT_NOTE, CpuMeter, Log, jsonable, log_stderr, machine_info, peak_rss_bytes

def run_benchmark(
    cfg: BenchmarkConfig,
    real_gallery: Any = None,
    image_sources: Optional[Sequence[Any]] = None,
    extractor: Any = None,
    command: str = "",
    log: Log = log_stderr,
) -> dict[str, Any]:
    """Every section in turn; a section that cannot run says why under "skipped" instead of numbers.

    `real_gallery` is a cbir.gallery.dataset.Gallery (or None), `image_sources` image files for the embedding
    section (None: generated garments), `extractor` a FeatureExtractor (None: VGG16 random init).
    """
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "meta": {
            "command": command,
            "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "config": jsonable(asdict(cfg)),
            "notes": [RANDOM_INIT_NOTE],
            "sections": {},
        },
        "machine": machine_info(),
    }
    sections = report["meta"]["sections"]
    real = real_data(real_gallery)
    if real is not None:
        report["meta"]["real_gallery"] = {
            "n": int(len(real["embeddings"])),
            "dim": int(real["embeddings"].shape[1]),
            "backbone": real["spec"].describe(),
        }

    with tempfile.TemporaryDirectory(prefix="cbir-bench-") as tmp_name:
        sources, source_note = pick_image_sources(image_sources, cfg.embed_images, cfg.seed, Path(tmp_name))
        # 1. embedding throughput and end-to-end (first: forks DataLoader workers while the process is small)
        with CpuMeter() as meter:
            if extractor is None:
                from cbir.embed.extractor import FeatureExtractor

                log("embedding: creating VGG16 (random init) on CPU")
                extractor = FeatureExtractor("vgg16.tv_in1k", weights="random", device="cpu", seed=0)
            report["embedding"] = {
                "model": extractor.spec.describe(),
                "images": source_note,
                "rows": embedding_throughput(extractor, sources, cfg.embed_batch_sizes, cfg.embed_workers, log),
            }
            report["end_to_end"] = end_to_end_section(extractor, sources, real, cfg, log)
        sections["embedding + end-to-end"] = meter.result

    # 2. query latency and memory, then 3. approximate search, sharing generated data
    data = DataCache(cfg, real, log)
    with CpuMeter() as meter:
        report["latency"], report["memory"] = latency_section(cfg, data, log)
    sections["latency + memory"] = meter.result
    report["targets"] = latency_targets(report["latency"]["rows"], full_n=report["latency"]["rows"][0]["n"])
    with CpuMeter() as meter:
        report["ann"] = ann_section(cfg, data, log)
    sections["approximate search"] = meter.result
    data.clear()
    for run in report["ann"].get("runs", []):
        if "rows" in run:
            report["targets"] += ann_targets(run)
    report["meta"]["duration_s"] = time.perf_counter() - t_start
    report["meta"]["peak_rss_mb"] = peak_rss_bytes() / MB
    if hasattr(os, "getloadavg"):
        report["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return jsonable(report)
