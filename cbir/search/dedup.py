"""Duplicate collapse: byte-identical (same sha1) and near-identical (cosine >= threshold) results shown once."""

from __future__ import annotations

from typing import Optional

import numpy as np

DEFAULT_THRESHOLD = 0.97


def collapse_duplicates(
    hashes: np.ndarray, unit_vectors: np.ndarray, threshold: Optional[float] = DEFAULT_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Group a ranked candidate list (best first) into duplicates; return (leader positions, copies per leader).

    Each candidate joins the first better-ranked leader it duplicates (same hash, or cosine of the unit
    vectors >= threshold; None = hashes only); otherwise it leads a group of its own. Leaders keep their order.
    """
    n = len(hashes)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    h = np.asarray(hashes).astype(str)
    same = h[:, None] == h[None, :]
    if threshold is not None:
        u = np.asarray(unit_vectors, dtype=np.float32)
        same |= u @ u.T >= threshold
    leader = np.full(n, -1, dtype=np.int64)
    for i in range(n):  # a loop over candidates (a few k), not over the gallery
        if leader[i] < 0:
            leader[np.flatnonzero(same[i] & (leader < 0))] = i
    leaders = np.flatnonzero(leader == np.arange(n))
    return leaders, np.bincount(leader, minlength=n)[leaders]
