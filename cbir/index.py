"""Gallery index and top-k search: one matrix operation per query batch, no loop over images."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Hashable

import numpy as np


class EmbeddingIndex:
    """A gallery's float32 vectors (and colour descriptors, if any) plus arrays derived from them once."""

    def __init__(self, vectors: np.ndarray, descriptors: np.ndarray | None = None) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"gallery vectors must be 2-D (N, dim), got shape {vectors.shape}")
        if descriptors is not None:
            descriptors = np.ascontiguousarray(descriptors, dtype=np.float32)
            if descriptors.ndim != 2 or len(descriptors) != len(vectors):
                raise ValueError(f"descriptors must be (N={len(vectors)}, d), got shape {descriptors.shape}")
        self.vectors = vectors
        self.descriptors = descriptors  # per-image colour descriptors, used by the methods that need them
        self._cache: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def derived(self, key: Hashable, compute: Callable[[np.ndarray], Any]) -> Any:
        """compute(vectors), cached under `key` (e.g. inverse norms, squared norms, a projection)."""
        if key not in self._cache:
            self._cache[key] = compute(self.vectors)
        return self._cache[key]

    @property
    def inv_norms(self) -> np.ndarray:
        """1 / ||g|| per gallery vector (0 for zero vectors): cosine without a second copy of the gallery."""
        return self.derived("inv_norms", lambda v: 1.0 / np.maximum(np.linalg.norm(v, axis=1), 1e-12))

    @property
    def sq_norms(self) -> np.ndarray:
        return self.derived("sq_norms", lambda v: np.einsum("ij,ij->i", v, v))

    def identical(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query rows, gallery rows) of exact matches between query and gallery vectors (hash, then verify)."""
        table = self.derived("row_hashes", _row_hash_table)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        qi, gi = [], []
        for i, row in enumerate(q):
            for j in table.get(_row_hash(row), ()):
                if np.array_equal(row, self.vectors[j]):
                    qi.append(i)
                    gi.append(j)
        return np.asarray(qi, dtype=np.int64), np.asarray(gi, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        """Resident size of the vectors and everything derived from them."""
        parts = [x for v in self._cache.values() for x in (v if isinstance(v, tuple) else (v,))]  # (owner, array) too
        extra = sum(a.nbytes for a in parts if isinstance(a, np.ndarray))
        return self.vectors.nbytes + extra + (0 if self.descriptors is None else self.descriptors.nbytes)


def _row_hash(row: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=8).digest()


def _row_hash_table(vectors: np.ndarray) -> dict[bytes, list[int]]:
    table: dict[bytes, list[int]] = {}
    for j, row in enumerate(vectors):
        table.setdefault(_row_hash(row), []).append(j)
    return table


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    """A (Q, dim) float32 batch from one vector or a batch; a wrong width is a clear error."""
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"query vectors must have {dim} columns, got shape {np.shape(queries)}")
    return q


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k best per row, best first; `exclude` (Q,) drops one index per row (-1 = none)."""
    scores = np.array(scores, dtype=np.float32, ndmin=2)
    if exclude is not None:
        exclude = np.atleast_1d(exclude)
        rows = np.flatnonzero(exclude >= 0)
        scores[rows, exclude[rows]] = -np.inf
    n = scores.shape[1] - (0 if exclude is None else int((exclude >= 0).any()))
    k = max(0, min(int(k), n))
    if k == 0:
        return np.empty((len(scores), 0), np.int64), np.empty((len(scores), 0), np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(part_scores, order, axis=1)
