"""A build-once FAISS index (HNSW or IVF) for the approximate-search benchmark (the app uses cbir.stores).

Exact scoring (cbir.similarity.registry) reads every gallery vector per query; that stays fast to about
a million vectors, beyond which an approximate index trades a little recall for far less work.
Scores follow cbir.similarity.registry's conventions (cosine similarity; 1 / (1 + distance)), so results
can be swapped for exact ones. faiss is imported only when an index is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cbir.index import as_queries, l2_normalize
from cbir.stores.faiss_store import import_faiss

ANN_METRICS = ("cosine", "euclidean")
ANN_KINDS = ("hnsw", "ivf")


class ApproximateIndex:
    """A FAISS index over float32 vectors: `build(vectors, metric)`, then `search(queries, k)`.

    Cosine is searched as L2 distance between unit vectors (same ranking); `hnsw` uses
    IndexHNSWFlat (M links per node, ef_search candidates per query); `ivf` uses IndexIVFFlat
    (nlist k-means cells, nprobe of them scanned per query).
    """

    def __init__(
        self,
        kind: str = "hnsw",
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        nlist: int | None = None,
        nprobe: int = 16,
        seed: int = 0,
    ) -> None:
        if kind not in ANN_KINDS:
            raise ValueError(f"unknown approximate index kind {kind!r}; expected one of {ANN_KINDS}")
        self.kind = kind
        self.m = int(m)
        self.ef_construction = int(ef_construction)
        self._ef_search = int(ef_search)
        self.nlist = nlist
        self._nprobe = int(nprobe)
        self.seed = int(seed)
        self.metric: str | None = None
        self.index: Any = None

    def __len__(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    @property
    def dim(self) -> int:
        if self.index is None:
            raise RuntimeError("the approximate index has not been built")
        return int(self.index.d)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return np.ascontiguousarray(l2_normalize(x)) if self.metric == "cosine" else x

    def build(self, vectors: np.ndarray, metric: str = "cosine") -> "ApproximateIndex":
        """Index (N, dim) vectors for `metric` ("cosine" or "euclidean"); returns self."""
        if metric not in ANN_METRICS:
            raise ValueError(f"approximate search supports {ANN_METRICS}, not {metric!r}")
        faiss = import_faiss()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"gallery vectors must be a non-empty 2-D (N, dim) array, got shape {vectors.shape}")
        self.metric = metric
        x = self._prepare(vectors)
        d = x.shape[1]
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.m)
            index.hnsw.efConstruction = self.ef_construction
            index.add(x)
        else:
            nlist = int(self.nlist or max(1, min(4 * int(np.sqrt(len(x))), len(x) // 39 or 1)))
            quantizer = faiss.IndexFlatL2(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
            index.cp.seed = self.seed
            index.train(x)
            index.add(x)
            self.nlist = nlist
        self.index = index
        self._apply_search_params()
        return self

    def _apply_search_params(self) -> None:
        if self.index is None:
            return
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = self._ef_search
        else:
            self.index.nprobe = min(self._nprobe, int(self.nlist or 1))

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._ef_search = int(value)
        self._apply_search_params()

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._nprobe = int(value)
        self._apply_search_params()

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices (Q, k) int64 and scores (Q, k) float32, best first; -1 / -inf pad missing hits."""
        if self.index is None:
            raise RuntimeError("build the approximate index before searching it")
        q = self._prepare(as_queries(queries, self.dim))
        k = max(0, min(int(k), len(self)))
        if k == 0:
            return np.empty((len(q), 0), np.int64), np.empty((len(q), 0), np.float32)
        d2, idx = self.index.search(q, k)
        d2 = np.maximum(d2, 0.0)
        scores = 1.0 - d2 / 2.0 if self.metric == "cosine" else 1.0 / (1.0 + np.sqrt(d2))
        scores = np.where(idx >= 0, scores, -np.inf).astype(np.float32)
        return idx.astype(np.int64), scores

    @property
    def nbytes(self) -> int:
        """Approximate resident size: the stored vectors plus the HNSW links or IVF lists."""
        if self.index is None:
            return 0
        n, d = len(self), self.dim
        vectors = n * d * 4
        if self.kind == "hnsw":
            links = int(self.index.hnsw.neighbors.size()) * 4 + int(self.index.hnsw.offsets.size()) * 8
            return vectors + links
        return vectors + n * 8 + int(self.nlist or 0) * d * 4


def recall_at_k(approx_idx: np.ndarray, exact_idx: np.ndarray) -> float:
    """Mean share of each row's exact top-k that the approximate top-k also found (k = exact width)."""
    approx_idx = np.atleast_2d(np.asarray(approx_idx))
    exact_idx = np.atleast_2d(np.asarray(exact_idx))
    if len(approx_idx) != len(exact_idx):
        raise ValueError(f"{len(approx_idx)} approximate rows vs {len(exact_idx)} exact rows")
    k = exact_idx.shape[1]
    if k == 0 or len(exact_idx) == 0:
        return float("nan")
    hits = (approx_idx[:, :, None] == exact_idx[:, None, :]) & (approx_idx[:, :, None] >= 0)
    return float(hits.any(axis=1).sum(axis=1).mean() / k)
