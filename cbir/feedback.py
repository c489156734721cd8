"""Relevance feedback (Rocchio): move a query embedding towards results marked relevant and away from the rest.

q' = ALPHA q + BETA mean(positives) - GAMMA mean(negatives), rescaled to the length of q, so that
distance-based and learned methods see a vector as long as a real image's (cosine ignores the length).
The weights are the classic SMART values (Rocchio 1971; Salton & Buckley 1990).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

ALPHA = 1.0
BETA = 0.75
GAMMA = 0.15


def rocchio(
    query: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
) -> np.ndarray:
    """The refined (dim,) query from (P, dim) positive and (M, dim) negative embeddings (either may be empty)."""
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    out = alpha * q
    if len(positives):
        out = out + beta * np.asarray(positives, dtype=np.float32).mean(axis=0)
    if len(negatives):
        out = out - gamma * np.asarray(negatives, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(out))
    return (out * (np.linalg.norm(q) / norm) if norm > 0 else q).astype(np.float32)


def check_indices(indices: Sequence[int] | None, n: int, name: str) -> np.ndarray:
    """Gallery indices as an int array; anything outside 0..n-1 or not whole is a clear ValueError naming `name`."""
    out = []
    for v in indices or ():
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = float("nan")
        if f != f or f != int(f) or not 0 <= int(f) < n:
            raise ValueError(f"{name} must be gallery indices 0..{n - 1}; got {v!r}")
        out.append(int(f))
    return np.asarray(out, dtype=np.int64)
