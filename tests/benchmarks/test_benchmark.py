"""The benchmark at a tiny size, so it cannot rot: every section present, numbers sane."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from benchmarks import BenchmarkConfig, render_markdown, run_benchmark, write_json
from benchmarks.config import AnnSet, GallerySize
from benchmarks.data import pca_whitened, synthetic_vectors
from benchmarks.latency import latency_targets, naive_query, query_latency, unique_nbytes
from benchmarks.measure import CpuMeter, summarize_ms
from cbir.index import EmbeddingIndex

SECTIONS = (
    "meta",
    "machine",
    "embedding",
    "end_to_end",
    "latency",
    "memory",
    "targets",
    "ann",
)


@pytest.fixture(scope="module")
def report(gallery, extractor, image_folder):
    pytest.importorskip("faiss")
    cfg = BenchmarkConfig.quick(
        galleries=(
            GallerySize(len(gallery), gallery.spec.dim, "real", ("cosine", "euclidean", "logreg", "forest")),
            GallerySize(300, 32, "isotropic"),
            GallerySize(600, 32, "clustered"),
        ),
        ann_sets=(AnnSet(600, 32, "clustered", "cosine"), AnnSet(len(gallery), 16, "real-pca", "euclidean")),
        embed_images=6,
        embed_batch_sizes=(1, 4),
    )
    images = sorted(p for p in image_folder.rglob("*.png"))
    return run_benchmark(
        cfg, real_gallery=gallery, image_sources=images, extractor=extractor, command="pytest", log=lambda m: None
    )


def test_report_has_every_section_and_is_json(report, tmp_path) -> None:
    assert set(SECTIONS) <= set(report)
    path = write_json(report, tmp_path / "b.json")
    assert set(json.loads(path.read_text())) == set(report)
    md = render_markdown(report)
    for title in (
        "Query latency",
        "Targets",
        "Approximate search",
        "Memory",
        "Embedding throughput",
        "End to end",
    ):
        assert f"## {title}" in md
    assert "skipped" not in md.lower()
    assert report["machine"]["usable_cores"] >= 1 and report["meta"]["duration_s"] > 0
    sections = report["meta"]["sections"]
    assert len(sections) == 3 and all(v["wall_s"] > 0 and v["own_cpu_s"] >= 0 for v in sections.values())


def test_latency_rows_are_sane_and_vectorised_beats_naive(report) -> None:
    rows = report["latency"]["rows"]
    assert {(r["n"], r["method"]) for r in rows} >= {
        (96, "forest"),
        (96, "logreg"),
        (300, "cosine"),
        (600, "euclidean"),
    }
    for r in rows:
        assert 0 < r["median_ms"] <= r["p95_ms"] and r["repeats"] == 2
        assert r["naive_ms"] > 0 and r["naive_items_timed"] >= 1
        assert r["speedup"] == pytest.approx(r["naive_ms"] / r["median_ms"], rel=1e-6)  # reported, not asserted: timing
        # the naive loop computes the same scores; euclidean's |q|^2 + |g|^2 - 2 q.g loses a little
        # float32 precision for a gallery item at distance ~0 (the query itself), hence the tolerance
        assert r["naive_max_abs_diff"] < (1e-2 if r["method"] == "euclidean" else 1e-4)
    real = [r for r in rows if r["n"] == 96]
    assert all(r["data"].startswith("real gallery") for r in real)
    assert {t["check"].split(" ")[0] for t in report["targets"]} >= {
        "cosine",
        "euclidean",
        "forest",
        "logreg",
        "vectorised",
    }
    for m in report["memory"]["rows"]:
        assert m["index_nbytes_mb"] >= m["index_unique_mb"] >= m["vectors_mb"] > 0 and m["rss_mb"] > 0


def test_ann_recall_and_latency(report) -> None:
    runs = report["ann"]["runs"]
    assert len(runs) == 2 and all("skipped" not in r for r in runs)
    for run in runs:
        assert run["build_s"] > 0 and run["exact"]["median_ms"] > 0
        for row in run["rows"]:
            assert 0.0 <= row["recall"] <= 1.0 and row["median_ms"] > 0 and row["speedup"] > 0
    assert max(r["recall"] for r in runs[0]["rows"]) >= 0.9


def test_pca_whitened_keeps_the_top_axes_at_unit_variance() -> None:
    x = synthetic_vectors(3000, 32, "clustered", seed=0)
    z = pca_whitened(x, 8, fit_rows=3000)
    assert z.shape == (3000, 8) and z.dtype == np.float32
    assert np.allclose(np.cov(z, rowvar=False), np.eye(8), atol=1e-3)


def test_embedding_and_end_to_end(report) -> None:
    rows = report["embedding"]["rows"]
    assert [(r["batch_size"], r["workers"]) for r in rows] == [(1, 0), (4, 0)]
    assert all(r["images"] == 6 and r["errors"] == 0 and r["images_per_s"] > 0 for r in rows)
    stages = report["end_to_end"]["stages"]
    assert set(stages) == {"decode", "preprocess", "forward", "search", "total"}
    assert all(s["median_ms"] > 0 for s in stages.values())
    assert stages["total"]["median_ms"] >= stages["forward"]["median_ms"]


def test_without_real_gallery_the_real_runs_are_skipped_not_faked(extractor, image_folder) -> None:
    pytest.importorskip("faiss")
    cfg = BenchmarkConfig.quick(
        galleries=(GallerySize(200, 16, "real", ("cosine",)),),
        ann_sets=(AnnSet(200, 16, "real-pca", "cosine"),),
        embed_images=2,
        embed_batch_sizes=(2,),
        e2e_repeats=1,
    )
    images = sorted(image_folder.rglob("*.png"))
    r = run_benchmark(cfg, image_sources=images, extractor=extractor, log=lambda m: None)
    assert "no real gallery" in r["ann"]["runs"][0]["skipped"]
    assert r["latency"]["rows"][0]["data"] == "synthetic isotropic (no real gallery)"
    assert "skipped: no real gallery" in render_markdown(r)


def test_naive_loop_extrapolates_past_its_budget() -> None:
    x = synthetic_vectors(5000, 8, "isotropic", seed=1)
    res = naive_query("cosine", x[0], x, budget_s=0.0)
    assert res["extrapolated"] and res["items_timed"] == 1 and res["estimated_ms"] > 0
    stats = query_latency("cosine", EmbeddingIndex(x), x[:4], warmup=1)
    assert stats["repeats"] == 3


def test_targets_flag_misses() -> None:
    rows = [
        {"n": 100, "dim": 8, "method": "cosine", "median_ms": 60.0, "speedup": 0.5},
        {"n": 1000, "dim": 8, "method": "cosine", "median_ms": 6000.0, "speedup": 2.0},
    ]
    checks = {t["check"]: t["met"] for t in latency_targets(rows, full_n=100)}
    assert checks["cosine query at 100 x 8"] is False
    assert any(k.startswith("cosine scaling") and v is False for k, v in checks.items())
    assert checks["vectorised faster than naive: cosine at 100 x 8"] is False


def test_unique_nbytes_counts_shared_arrays_once() -> None:
    x = synthetic_vectors(100, 8, seed=0)
    index = EmbeddingIndex(x)
    index.derived("alias", lambda v: v)  # what a classifier without projection caches
    norms = index.inv_norms
    assert index.nbytes == 2 * x.nbytes + norms.nbytes and unique_nbytes(index) == x.nbytes + norms.nbytes


def test_cpu_meter_sees_own_work() -> None:
    with CpuMeter() as m:
        x = synthetic_vectors(2000, 64, seed=0)
        for _ in range(20):
            x @ x.T
    assert m.result["wall_s"] > 0 and m.result["own_cpu_s"] > 0
    assert m.result["other_share"] is None or 0 <= m.result["other_share"] <= 1.5


def test_helpers() -> None:
    s = summarize_ms([0.001, 0.002, 0.003])
    assert s["median_ms"] == pytest.approx(2.0) and s["repeats"] == 3 and s["p95_ms"] <= s["max_ms"]
    assert math.isnan(summarize_ms([])["median_ms"])
    clustered = synthetic_vectors(1000, 16, "clustered", seed=0)
    assert clustered.dtype == np.float32 and clustered.shape == (1000, 16)
    assert np.array_equal(clustered, synthetic_vectors(1000, 16, "clustered", seed=0))
    assert clustered[:, 0].var() > clustered[:, -1].var()  # decaying spectrum
    assert replace(BenchmarkConfig.full(), repeats=3).repeats == 3
