"""Benchmark data: generated vectors and classifiers, the real gallery's arrays, image files, and a cache that frees what no later section needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from cbir.similarity.classifiers import ClassifierSet, PairClassifier
from cbir.embed.spec import EmbeddingSpec
from cbir.similarity.pairs import sample_pairs

from .config import BenchmarkConfig
from .measure import Log

def synthetic_vectors(
    n: int, dim: int, kind: str = "isotropic", seed: int = 0, n_clusters: int = 1000, spread: float = 1.0
) -> np.ndarray:
    """(n, dim) float32 test vectors, written in row blocks to bound temporaries.

    "isotropic": standard Gaussian (the worst case for approximate search: no structure at all).
    "clustered": `n_clusters` Gaussian clusters with a 1/i eigenvalue spectrum (centres and spread
    both scaled by i^-1/2): a participation ratio (effective dimension) of about 23 at 256-d, a
    structured case, yet harder than the real random-init VGG16 gallery, whose spectrum decays faster.
    """
    if kind not in ("isotropic", "clustered"):
        raise ValueError(f"unknown synthetic data kind {kind!r}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    block = 65536
    if kind == "isotropic":
        for s in range(0, n, block):
            rng.standard_normal(out=out[s : s + block], dtype=np.float32)
        return out
    scale = (np.arange(1, dim + 1, dtype=np.float32) ** -0.5).astype(np.float32)
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32) * scale
    labels = rng.integers(n_clusters, size=n)
    for s in range(0, n, block):
        part = out[s : s + block]
        rng.standard_normal(out=part, dtype=np.float32)
        part *= np.float32(spread) * scale
        part += centres[labels[s : s + block]]
    return out


def participation_ratio(x: np.ndarray, sample: int = 20_000, seed: int = 0) -> float:
    """Effective dimension (sum of covariance eigenvalues)^2 / sum of their squares, on a row sample:
    how spread-out the data is, which is what makes approximate search hard."""
    rows = np.random.default_rng(seed).choice(len(x), size=min(sample, len(x)), replace=False)
    ev = np.linalg.eigvalsh(np.cov(np.asarray(x[np.sort(rows)], dtype=np.float64), rowvar=False))
    ev = np.clip(ev, 0.0, None)
    return float(ev.sum() ** 2 / max((ev**2).sum(), 1e-300))


def synthetic_classifiers(
    vectors: np.ndarray,
    kinds: Iterable[str],
    n_pairs: int = 2000,
    seed: int = 0,
    task: str = "type",
    keys: Optional[np.ndarray] = None,
) -> ClassifierSet:
    """Classifiers fitted on pairs of the first few thousand vectors: real fitted models whose scoring
    cost matches a trained gallery's; with random labels (no `keys`) their predictions mean nothing."""
    rng = np.random.default_rng(seed)
    n_img = int(min(len(vectors), max(4 * n_pairs, 200)))
    keys = rng.integers(0, 5, size=n_img).astype(str) if keys is None else np.asarray(keys[:n_img]).astype(str)
    pool = np.arange(n_img)
    pairs = sample_pairs(keys, pool, n_pairs, rng)
    spec = EmbeddingSpec(model="synthetic-vectors", weights="random", dim=int(vectors.shape[1]), seed=seed)
    sub = np.asarray(vectors[:n_img], dtype=np.float32)
    return ClassifierSet({(k, task): PairClassifier.fit(k, task, sub, pairs, pool, spec, seed=seed) for k in kinds})


def real_data(gallery: Any) -> Optional[dict[str, Any]]:
    """The arrays the benchmark needs from a real Gallery, read once."""
    if gallery is None:
        return None
    return {
        "embeddings": np.asarray(gallery.embeddings, dtype=np.float32),
        "labels": np.asarray(gallery.labels).astype(str),
        "attributes": {
            "type": np.asarray(gallery.types).astype(str),
            "colour": np.asarray(gallery.colours).astype(str),
        },
        "hashes": gallery.hashes,
        "spec": gallery.spec,
    }


def image_sources(image_sources: Optional[Sequence[Any]], n: int, seed: int, tmp: Path) -> tuple[list[Any], str]:
    """`n` image files: a seeded sample of the given ones, or generated garments written to `tmp`."""
    if image_sources:
        srcs = list(image_sources)
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(srcs), size=min(n, len(srcs)), replace=False))
        return [srcs[i] for i in pick], f"{len(pick)} of {len(srcs)} given image files (seeded sample)"
    from cbir.gallery.synthetic import write_image_folder

    per_class = max(1, -(-n // 24))
    write_image_folder(tmp / "images", per_class=per_class, size=256, seed=seed)
    files = sorted(p for p in (tmp / "images").rglob("*") if p.is_file())[:n]
    return files, f"{len(files)} generated garment images (256 px; no real images given)"


def pca_whitened(x: np.ndarray, dim: int, seed: int = 0, fit_rows: int = 4096) -> np.ndarray:
    """`x` on its top `dim` principal axes (fitted on a seeded sample of rows), each scaled to unit variance."""
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(len(x), min(fit_rows, len(x)), replace=False))].astype(np.float64)
    mean = sample.mean(0)
    _, s, vt = np.linalg.svd(sample - mean, full_matrices=False)
    scale = np.sqrt(len(sample) - 1) / np.maximum(s[:dim], 1e-12)
    return (((x - mean) @ vt[:dim].T) * scale).astype(np.float32)


class DataCache:
    """Gallery vectors by (n, dim, data), each made once and freed once no later section needs it.

    Synthetic sets are drawn with cfg.ann_queries extra rows: the gallery is the first n rows and
    the rest are held-out queries from the same distribution (for approximate-search recall).
    """

    def __init__(self, cfg: BenchmarkConfig, real: Optional[dict[str, Any]], log: Log):
        self.cfg, self.real, self.log = cfg, real, log
        self.needed = [g.key for g in cfg.galleries] + [a.key for a in cfg.ann_sets]
        self._cache: dict[tuple[int, int, str], tuple[np.ndarray, Optional[np.ndarray], str]] = {}

    def take(self, key: tuple[int, int, str]) -> tuple[np.ndarray, Optional[np.ndarray], str]:
        """(gallery vectors, held-out queries or None, description) for one use of `key`."""
        self.needed.remove(key)
        if key not in self._cache:
            for old in [k for k in self._cache if k not in self.needed]:
                del self._cache[old]  # free what no later use needs before allocating more
            self._cache[key] = self._make(key)
        out = self._cache[key]
        if key not in self.needed:
            del self._cache[key]
        return out

    def _make(self, key: tuple[int, int, str]) -> tuple[np.ndarray, Optional[np.ndarray], str]:
        n, dim, data = key
        real = self.real
        if data == "real" and real is not None and real["embeddings"].shape[1] == dim:
            return real["embeddings"], None, f"real gallery ({real['spec'].describe()})"
        if data == "real-pca" and real is not None:
            return pca_whitened(real["embeddings"], dim, self.cfg.seed), None, f"real gallery, PCA-{dim} whitened"
        kind = "isotropic" if data == "real" else data
        self.log(f"data: generating {n:,} x {dim} {kind} vectors")
        full = synthetic_vectors(n + self.cfg.ann_queries, dim, kind, self.cfg.seed)
        note = f"synthetic {kind}"
        if data == "real":
            note += " (no real gallery)" if real is None else f" (the real gallery is not {dim}-d)"
        return full[:n], full[n:], note

    def clear(self) -> None:
        self._cache.clear()
