"""Benchmark sizes: one BenchmarkConfig (`full()` for the real run, `quick()` for smoke runs and tests)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class GallerySize:
    """One latency gallery: n vectors of dim columns; data "real" uses the real gallery when given."""

    n: int
    dim: int
    data: str = "isotropic"  # "real", "isotropic" (Gaussian) or "clustered" (see synthetic_vectors)
    methods: tuple[str, ...] = ("cosine", "euclidean", "logreg")

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.n, self.dim, self.data)


@dataclass(frozen=True)
class AnnSet:
    """One approximate-search run: an HNSW index over n vectors of dim columns for one metric."""

    n: int
    dim: int
    data: str = "clustered"  # "clustered", "isotropic" or "real-pca" (the real gallery, PCA-whitened)
    metric: str = "cosine"

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.n, self.dim, self.data)


@dataclass(frozen=True)
class BenchmarkConfig:
    """Sizes and repeat counts of one benchmark run."""

    galleries: tuple[GallerySize, ...]
    ann_sets: tuple[AnnSet, ...]
    repeats: int = 50  # single-query latency samples per (gallery, method)
    slow_repeats: int = 10  # ... for the random forest
    naive_budget_s: float = 3.0  # per (gallery, method); beyond it the naive loop is extrapolated
    k: int = 10
    classifier_pairs: int = 2000  # pairs for classifiers fitted on synthetic vectors
    ann_m: int = 32
    ann_ef_construction: int = 80
    ann_ef_search: tuple[int, ...] = (16, 32, 64, 128, 256)
    ann_queries: int = 200  # for recall
    ann_repeats: int = 100  # single-query latency samples
    embed_images: int = 192
    embed_batch_sizes: tuple[int, ...] = (1, 8, 32)
    embed_workers: tuple[int, ...] = (0, 2)
    e2e_repeats: int = 10
    seed: int = 0

    @classmethod
    def full(cls, **overrides: Any) -> "BenchmarkConfig":
        """The real run: 11,385 and 100,000 x 4096-d, 1,000,000 x 256-d; about 10-15 minutes on 2 cores."""
        cfg = cls(
            galleries=(
                GallerySize(11_385, 4096, "real", ("cosine", "euclidean", "logreg", "forest")),
                GallerySize(100_000, 4096, "isotropic"),
                GallerySize(1_000_000, 256, "clustered"),
            ),
            ann_sets=(
                AnnSet(1_000_000, 256, "clustered", "cosine"),
                AnnSet(100_000, 256, "isotropic", "cosine"),
                AnnSet(11_385, 256, "real-pca", "cosine"),
            ),
        )
        return replace(cfg, **overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> "BenchmarkConfig":
        """Tiny sizes and 2 repeats: every section runs in seconds (for --quick and the tests)."""
        cfg = cls(
            galleries=(
                GallerySize(300, 64, "real", ("cosine", "euclidean", "logreg", "forest")),
                GallerySize(600, 64, "isotropic"),
                GallerySize(2_000, 32, "clustered"),
            ),
            ann_sets=(AnnSet(2_000, 32, "clustered", "cosine"), AnnSet(2_000, 32, "clustered", "euclidean")),
            repeats=2,
            slow_repeats=2,
            naive_budget_s=0.2,
            classifier_pairs=200,
            ann_ef_search=(32, 128),
            ann_queries=50,
            ann_repeats=5,
            embed_images=8,
            embed_batch_sizes=(1, 4),
            embed_workers=(0,),
            e2e_repeats=2,
        )
        return replace(cfg, **overrides)
