"""The exact in-process store: vectors in one float32 matrix, a query scores every row in one product."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from cbir.core.filters import Filters
from cbir.index import as_queries, l2_normalize, top_k
from cbir.stores.base import LABEL_COLUMNS, Labels, VectorStore, cached_mask, check_batch, check_metric, empty_result, l2_to_score, pad


class NumpyStore(VectorStore):
    """Exact search; upserts append and mark replaced rows dead, `compact` happens lazily before a search."""

    def __init__(self, dim: int, metric: str = "cosine") -> None:
        self.dim, self.metric = int(dim), check_metric(metric)
        self._vectors = np.empty((0, self.dim), np.float32)
        self._ids = np.empty(0, np.int64)
        self._labels = {c: np.empty(0, dtype=object) for c in LABEL_COLUMNS}
        self._pending: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        self._sq: Optional[np.ndarray] = None  # squared norms (l2) or inverse norms (cosine), per row
        self._masks: dict[str, Optional[np.ndarray]] = {}  # filter -> row mask, until the next write

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, labels: Labels) -> None:
        ids, vectors = check_batch(ids, vectors, labels, self.dim)
        self._pending.append((ids, vectors.copy(), {c: np.asarray(labels[c], dtype=object) for c in LABEL_COLUMNS}))

    def _compact(self) -> None:
        """Fold pending batches in; the last write of an id wins."""
        if not self._pending:
            return
        ids = np.concatenate([self._ids] + [p[0] for p in self._pending])
        vecs = np.concatenate([self._vectors] + [p[1] for p in self._pending])
        labels = {c: np.concatenate([self._labels[c]] + [p[2][c] for p in self._pending]) for c in LABEL_COLUMNS}
        self._pending = []
        _, last = np.unique(ids[::-1], return_index=True)
        keep = np.sort(len(ids) - 1 - last)
        self._ids, self._vectors = ids[keep], np.ascontiguousarray(vecs[keep])
        self._labels = {c: v[keep] for c, v in labels.items()}
        self._sq, self._masks = None, {}

    def delete(self, ids: Sequence[int]) -> None:
        self._compact()
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        self._ids, self._vectors = self._ids[keep], self._vectors[keep]
        self._labels = {c: v[keep] for c, v in self._labels.items()}
        self._sq, self._masks = None, {}

    def _scores(self, q: np.ndarray) -> np.ndarray:
        v = self._vectors
        if self.metric == "ip":
            return q @ v.T
        if self.metric == "cosine":
            if self._sq is None:
                self._sq = 1.0 / np.maximum(np.linalg.norm(v, axis=1), 1e-12)
            return (l2_normalize(q) @ v.T) * self._sq[None, :]
        if self._sq is None:
            self._sq = np.einsum("ij,ij->i", v, v)
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + self._sq[None, :] - 2.0 * (q @ v.T)
        return l2_to_score(d2)

    def search(self, queries: np.ndarray, k: int, filters: Optional[Filters] = None) -> tuple[np.ndarray, np.ndarray]:
        self._compact()
        q = as_queries(queries, self.dim)
        if len(self._ids) == 0:
            return empty_result(len(q), int(k))
        scores = np.asarray(self._scores(q), dtype=np.float32)
        mask = cached_mask(self._masks, self._labels, filters)
        if mask is not None:
            scores[:, ~mask] = -np.inf
        rows, sc = top_k(scores, min(int(k), len(self._ids) if mask is None else int(mask.sum())))
        return pad(self._ids[rows], sc, k)

    def get(self, ids: Sequence[int]) -> np.ndarray:
        self._compact()
        order = np.argsort(self._ids)
        want = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self._ids[order], want)
        pos = np.minimum(pos, max(len(order) - 1, 0))
        if len(order) == 0 or (self._ids[order][pos] != want).any():
            missing = want if len(order) == 0 else want[self._ids[order][pos] != want]
            raise KeyError(f"ids not in the store: {missing[:5].tolist()}")
        return self._vectors[order[pos]]

    def flush(self, edit: bool = False) -> None:
        self._compact()

    def ids(self) -> np.ndarray:
        self._compact()
        return self._ids.copy()
