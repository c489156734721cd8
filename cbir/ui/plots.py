"""Pictures of a search: the query's score against the whole gallery, and a 2-D PCA map of the gallery.

Pure numpy/pandas: the data frames are drawn by the app's native plots (no plotting dependency).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

HIST_BINS = 40
QUERY = "★ query"
RESULT = "● result"


def score_histogram(scores: np.ndarray, kth_score: float, bins: int = HIST_BINS) -> pd.DataFrame:
    """Histogram of finite scores: one row per bin (score = bin centre, count, part = top-k or rest).

    A bin is "top-k" when its centre is at or above the k-th best score, which marks the cut.
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return pd.DataFrame({"score": [], "count": [], "part": []})
    counts, edges = np.histogram(s, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    part = np.where(edges[1:] > kth_score, "top-k", "rest")
    return pd.DataFrame({"score": np.round(centres, 4), "count": counts, "part": part})


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, (2, dim) principal axes) of the rows, via SVD of the centred matrix."""
    v = np.asarray(vectors, dtype=np.float64)
    mean = v.mean(axis=0)
    _, _, vt = np.linalg.svd(v - mean, full_matrices=False)
    axes = vt[:2]
    if axes.shape[0] < 2:
        axes = np.vstack([axes, np.zeros((2 - axes.shape[0], v.shape[1]))])
    return mean, axes


def gallery_map(
    vectors: np.ndarray,
    groups: Sequence[str],
    query: np.ndarray | None = None,
    results: Sequence[int] = (),
    basis: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The gallery projected on its first two principal axes (x, y, group = type), plus the query and its results
    as rows of their own groups so they stand out. `basis` is a cached pca_2d(vectors)."""
    mean, axes = basis if basis is not None else pca_2d(vectors)
    xy = (np.asarray(vectors, dtype=np.float64) - mean) @ axes.T
    group = np.asarray([str(g) or "unlabelled" for g in groups], dtype=object)
    frames = [pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "group": group, "index": np.arange(len(xy))})]
    res = np.asarray(list(results), dtype=np.int64)
    if res.size:
        frames.append(pd.DataFrame({"x": xy[res, 0], "y": xy[res, 1], "group": RESULT, "index": res}))
    if query is not None:
        q = (np.asarray(query, dtype=np.float64).reshape(1, -1) - mean) @ axes.T
        frames.append(pd.DataFrame({"x": q[:, 0], "y": q[:, 1], "group": QUERY, "index": [-1]}))
    return pd.concat(frames, ignore_index=True)
