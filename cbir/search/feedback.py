"""Relevance feedback (Rocchio): move a query embedding towards results marked relevant and away from the rest.

q' = ALPHA q + BETA mean(positives) - GAMMA mean(negatives), rescaled to the length of q, so that
distance-based and learned methods see a vector as long as a real image's (cosine ignores the length).
The weights are the classic SMART values (Rocchio 1971; Salton & Buckley 1990).
"""

from __future__ import annotations

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
    q = np.asarray(query, dtype=np.float32).reshape(1, -1)
    pos = np.asarray(positives, dtype=np.float32).reshape(-1, q.shape[1])
    neg = np.asarray(negatives, dtype=np.float32).reshape(-1, q.shape[1])
    zero = np.zeros_like(q)
    pos_mean = pos.mean(axis=0, keepdims=True) if len(pos) else zero
    neg_mean = neg.mean(axis=0, keepdims=True) if len(neg) else zero
    return rocchio_rows(q, pos_mean, neg_mean, alpha, beta, gamma)[0]


def rocchio_rows(
    queries: np.ndarray,
    pos_means: np.ndarray,
    neg_means: np.ndarray,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
) -> np.ndarray:
    """Rocchio for a batch: (Q, dim) queries and the (Q, dim) means of their marks (zero rows = no marks)."""
    q = np.asarray(queries, dtype=np.float32)
    out = alpha * q + beta * np.asarray(pos_means, np.float32) - gamma * np.asarray(neg_means, np.float32)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    scale = np.where(norm > 0, np.linalg.norm(q, axis=1, keepdims=True) / np.maximum(norm, 1e-12), 1.0)
    return np.where(norm > 0, out * scale, q).astype(np.float32)
