"""Smaller gallery vectors: PCA (optionally whitened) fitted on the gallery, and float16 storage.

Both trade a little accuracy for memory and query time; `benchmarks.representation` measures how much
accuracy each costs against the full-size float32 baseline on the same pairs and split.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: larger magnitudes overflow to inf
_CHUNK = 8192  # rows transformed at a time, to bound the temporary centred (rows, in_dim) copy


@dataclass(frozen=True)
class PCAReduction:
    """A fitted linear map x -> ((x - mean) @ components.T) * scale, from in_dim to dim columns."""

    mean: np.ndarray  # (in_dim,) float32
    components: np.ndarray  # (dim, in_dim) float32, orthonormal rows
    explained_variance: np.ndarray  # (dim,) float64, variance of the training data along each row
    scale: np.ndarray  # (dim,) float32: 1 / std of the projected training data if whitened, else 1
    whiten: bool

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def in_dim(self) -> int:
        return int(self.components.shape[1])

    @classmethod
    def fit(cls, x: np.ndarray, dim: int, whiten: bool = True, seed: int = 0, eps: float = 1e-12) -> "PCAReduction":
        """Fit on (N, in_dim) vectors; with `whiten`, every output column has unit variance (ddof=1) on `x`.

        The scale is measured on the projected training data itself, so whitening is exact even when
        sklearn's (seeded, reproducible) randomized SVD solver is the one that found the components.
        """
        from sklearn.decomposition import PCA

        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"PCA input must be 2-D (N, dim), got shape {x.shape}")
        n, d = x.shape
        if not 1 <= dim <= min(n - 1, d):
            raise ValueError(f"PCA to {dim} dimensions needs 1 <= dim <= min(N - 1, in_dim) = {min(n - 1, d)}")
        pca = PCA(n_components=int(dim), svd_solver="auto", random_state=seed).fit(x)
        mean = pca.mean_.astype(np.float32)
        components = np.ascontiguousarray(pca.components_, dtype=np.float32)
        base = cls(mean, components, pca.explained_variance_.astype(np.float64), np.ones(dim, np.float32), False)
        if not whiten:
            return base
        std = base.transform(x).astype(np.float64).std(axis=0, ddof=1)
        return cls(mean, components, base.explained_variance, (1.0 / np.maximum(std, eps)).astype(np.float32), True)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, in_dim) or (in_dim,) -> (N, dim) or (dim,) float32, in row chunks to bound memory."""
        x = np.asarray(x, dtype=np.float32)
        single = x.ndim == 1
        x2 = x[None, :] if single else x
        if x2.ndim != 2 or x2.shape[1] != self.in_dim:
            raise ValueError(f"expected vectors with {self.in_dim} columns, got shape {x.shape}")
        out = np.empty((len(x2), self.dim), dtype=np.float32)
        proj = (self.components * self.scale[:, None]).T  # (in_dim, dim): scaling folded into the matrix
        for s in range(0, len(x2), _CHUNK):
            np.matmul(x2[s : s + _CHUNK] - self.mean, proj, out=out[s : s + _CHUNK])
        return out[0] if single else out

    def explained_variance_ratio(self, total_variance: float) -> float:
        """Share of `total_variance` (sum of the training data's per-column variances) the dim columns keep."""
        return float(self.explained_variance.sum() / total_variance) if total_variance > 0 else float("nan")

    def save(self, path: str | os.PathLike) -> Path:
        """Write a pickle-free .npz (arrays plus a JSON header)."""
        path = Path(path)
        header = {"format": "cbir.PCAReduction", "version": 1, "whiten": self.whiten, "dim": self.dim}
        with open(path, "wb") as f:  # a file object keeps numpy from appending a second .npz suffix
            np.savez(
                f,
                mean=self.mean,
                components=self.components,
                explained_variance=self.explained_variance,
                scale=self.scale,
                header_json=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PCAReduction":
        """Read what `save` wrote (allow_pickle stays off)."""
        with np.load(Path(path), allow_pickle=False) as z:
            header = json.loads(bytes(z["header_json"]).decode())
            if header.get("format") != "cbir.PCAReduction":
                raise ValueError(f"{path} is not a saved PCAReduction")
            return cls(z["mean"], z["components"], z["explained_variance"], z["scale"], bool(header["whiten"]))


def to_float16(x: np.ndarray) -> np.ndarray:
    """float16 copy for storage; values beyond float16's range are an error rather than a silent inf."""
    x = np.asarray(x)
    if x.size and float(np.nanmax(np.abs(x))) > FLOAT16_MAX:
        raise ValueError(f"values up to {float(np.nanmax(np.abs(x))):.4g} overflow float16 (max {FLOAT16_MAX:g})")
    return x.astype(np.float16)


def float16_roundtrip(x: np.ndarray) -> np.ndarray:
    """x stored as float16 and read back as float32: what scoring sees with a float16 gallery."""
    return to_float16(x).astype(np.float32)


def float16_error(x: np.ndarray) -> dict[str, float]:
    """Max absolute and max relative (per-row L2) error that float16 storage introduces."""
    x = np.asarray(x, dtype=np.float32)
    diff = float16_roundtrip(x) - x
    norms = np.linalg.norm(x, axis=1) if x.ndim == 2 else np.atleast_1d(np.linalg.norm(x))
    dn = np.linalg.norm(diff, axis=1) if x.ndim == 2 else np.atleast_1d(np.linalg.norm(diff))
    rel = np.where(norms > 0, dn / np.maximum(norms, 1e-30), 0.0)
    return {"max_abs": float(np.abs(diff).max(initial=0.0)), "max_rel_l2": float(rel.max(initial=0.0))}
