"""A query's final hit list from ranked candidates: fetch more when duplicates collapse, cut at `min_score`."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from cbir.search.dedup import collapse_duplicates

Candidates = Callable[[int], tuple[np.ndarray, np.ndarray]]  # fetch -> the best `fetch` (indices, scores)


def rank(
    candidates: Candidates,
    k: int,
    n: int,
    dedup: bool = False,
    hashes: Optional[np.ndarray] = None,
    unit_vectors: Optional[np.ndarray] = None,
    threshold: Optional[float] = None,
    min_score: Optional[float] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, scores, copies) of at most k results among `n` candidates, best first.

    With `dedup` the duplicates (same hash, or cosine of the (N, D) `unit_vectors` >= threshold) collapse into their
    best-ranked member, and more candidates are fetched until k groups are found; scores below `min_score` are cut.
    """
    fetch = min(n, max(2 * k, k + 20)) if dedup else k
    while True:
        idx, sc = candidates(fetch)
        exhausted = len(idx) < fetch or fetch >= n
        if min_score is not None:  # candidates come best first: those kept are a prefix, the rest rank lower still
            keep = sc >= min_score
            exhausted |= not bool(keep.all())
            idx, sc = idx[keep], sc[keep]
        copies = np.ones(len(idx), dtype=np.int64)
        if dedup:
            leaders, copies = collapse_duplicates(hashes[idx], unit_vectors[idx], threshold)
            idx, sc = idx[leaders], sc[leaders]
        if len(idx) >= k or exhausted:
            return idx[:k], sc[:k], copies[:k]
        fetch = min(n, fetch * 4)
