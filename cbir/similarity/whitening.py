"""Learned whitening of embeddings for instance likeness (the hybrid's instance term).

Radenovic et al.'s learned whitening ("Fine-tuning CNN image retrieval with no human annotation", 2018):
whiten by the covariance of the differences between a photo and an edited copy of it (so what an edit changes
is damped), then rotate by PCA of the whitened photos and keep the leading `dim` axes. The copies are the
instance test's edit (cbir.similarity.instance) of training images under another seed. Pure numpy; one
(1280, dim) matrix product per batch, so the whitened cosine is an inner product a vector store can serve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from cbir.index import l2_normalize

WHITENING_FILE = "whitening.npz"
DEFAULT_DIM = 768  # chosen on the Apparel validation split (docs/quality.md)
COPY_SEED = 1  # the edited copies it learns from use another seed than evaluation's (0)
RIDGE = 1e-6  # added to the difference covariance's diagonal, so few copies still give a finite inverse


@dataclass
class Whitening:
    """x -> unit((unit(x) - mean) @ projection); `card` says what it was fitted on (backbone, images, dim).
    Saved in float16, so a loaded whitening is the fitted one rounded (tests compare loaded with loaded)."""

    mean: np.ndarray
    projection: np.ndarray
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.projection.shape[1])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Unit whitened vectors of embeddings `x` (N, D) -> (N, dim)."""
        return l2_normalize((l2_normalize(np.asarray(x, np.float32)) - self.mean) @ self.projection).astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / WHITENING_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        # float16 halves the file (2.0 MB for 1280 x 768); a ranking does not see the difference
        np.savez(path, mean=self.mean.astype(np.float16), projection=self.projection.astype(np.float16),
                 card=np.array(json.dumps(self.card)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Whitening":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["mean"].astype(np.float32), z["projection"].astype(np.float32), json.loads(str(z["card"])))


def fit_whitening(photos: np.ndarray, originals: np.ndarray, copies: np.ndarray, dim: int = DEFAULT_DIM,
                  card: Optional[dict[str, Any]] = None) -> Whitening:
    """Learned whitening from embeddings of `photos` (the PCA) and matching (original, edited copy) rows."""
    x = l2_normalize(np.asarray(photos, np.float64))
    diff = l2_normalize(np.asarray(originals, np.float64)) - l2_normalize(np.asarray(copies, np.float64))
    if len(diff) < 2 or len(x) < 2:
        raise ValueError(f"learned whitening needs at least 2 photos and 2 copies; got {len(x)} and {len(diff)}")
    d = x.shape[1]
    lam, vec = np.linalg.eigh(diff.T @ diff / len(diff) + RIDGE * np.eye(d))
    p1 = vec / np.sqrt(lam)  # the difference covariance's inverse square root (up to a rotation)
    mean = x.mean(0)
    y = (x - mean) @ p1
    lam2, vec2 = np.linalg.eigh(np.cov(y.T))
    keep = np.argsort(lam2)[::-1][: min(dim, d)]
    card = {**(card or {}), "dim": int(len(keep)), "photos": int(len(x)), "copies": int(len(diff))}
    return Whitening(mean.astype(np.float32), (p1 @ vec2[:, keep]).astype(np.float32), card)


def instance_vectors(whitening: Optional[Whitening], x: np.ndarray) -> np.ndarray:
    """Whitened unit vectors, or the unit embeddings when no whitening was fitted (the term is then a cosine)."""
    return l2_normalize(np.asarray(x, np.float32)) if whitening is None else whitening.transform(x)
