"""The vector-store contract: one collection of (id, vector, label columns) searched under one metric.

Every backend (numpy, FAISS, Milvus) implements the same operations so the engine and the
scripts never know which one they talk to. Scores follow cbir.similarity.registry's conventions:
cosine similarity, 1 / (1 + Euclidean distance), or the raw inner product; higher is better.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Mapping, Optional, Sequence

import numpy as np

from cbir.core.filters import Filters, label_mask, normalise_filters

METRICS = ("cosine", "l2", "ip")
LABEL_COLUMNS = ("label", "colour", "type")
# a Milvus URI naming a server (anything else is a milvus-lite file)
MILVUS_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://")
MASK_CACHE_SIZE = 32

Labels = Mapping[str, Sequence[str]]


class StoreUnavailableError(ConnectionError, ValueError):
    """A store server that cannot be reached; the message names it. A ValueError too, so callers that show a bad
    request's message to the user (the app) show this one instead of an internal error; the next call retries."""


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    return metric


def l2_to_score(d2: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance -> 1 / (1 + distance), cbir.similarity.registry's inverse-Euclidean score."""
    return (1.0 / (1.0 + np.sqrt(np.maximum(d2, 0.0)))).astype(np.float32)


def check_batch(ids: np.ndarray, vectors: np.ndarray, labels: Labels, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64, vectors float32 (n, dim)) after checking shapes and label column lengths."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape != (len(ids), dim):
        raise ValueError(f"expected {len(ids)} vectors of {dim} columns, got shape {vectors.shape}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("ids in one batch must be unique")
    for column in LABEL_COLUMNS:
        if len(labels.get(column, ())) != len(ids):
            raise ValueError(f"label column {column!r} needs {len(ids)} values")
    return ids, vectors


def empty_result(q: int, k: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return np.full((q, k), -1, np.int64), np.full((q, k), -np.inf, np.float32)


def cached_mask(cache: dict, columns: Mapping[str, np.ndarray], filters: Optional[Filters]) -> Optional[np.ndarray]:
    """label_mask, remembered per filter in `cache` (the caller empties it on every write): a repeated
    filter costs nothing instead of a string comparison over every row."""
    key = repr(sorted(normalise_filters(filters).items()))
    if key not in cache:
        if len(cache) >= MASK_CACHE_SIZE:  # one bool per row each: keep the memory bounded
            cache.clear()
        cache[key] = label_mask(columns, filters)
    return cache[key]


def pad(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Results widened to k columns with -1 / -inf: every backend answers (Q, k)."""
    extra = int(k) - ids.shape[1]
    if extra <= 0:
        return ids, scores
    fill_ids, fill_sc = empty_result(len(ids), extra)
    return np.hstack([ids, fill_ids]), np.hstack([scores, fill_sc])


class VectorStore(ABC):
    """One vector collection: upsert, delete, filtered top-k search, fetch by id, count."""

    metric: str
    dim: int

    @abstractmethod
    def upsert(self, ids: np.ndarray, vectors: np.ndarray, labels: Labels) -> None:
        """Insert rows, replacing any row with the same id; `labels` maps each of LABEL_COLUMNS to n strings."""

    def add(self, ids: np.ndarray, vectors: np.ndarray, labels: Labels) -> None:
        """Same as upsert: adding an id that is already stored replaces it."""
        self.upsert(ids, vectors, labels)

    @abstractmethod
    def delete(self, ids: Sequence[int]) -> None:
        """Remove rows by id (unknown ids are ignored)."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, filters: Optional[Filters] = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids (Q, k) int64 and scores (Q, k) float32, best first, among rows passing `filters`
        ({label column: allowed values}); -1 / -inf pad when fewer rows qualify."""

    @abstractmethod
    def get(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors (len(ids), dim) in the order asked; an unknown id is a KeyError."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every stored id (int64, any order)."""

    def count(self) -> int:
        return int(len(self.ids()))

    def flush(self, edit: bool = False) -> None:
        """Make written rows durable and searchable at full speed (a no-op for in-memory stores); `edit`: after a
        live edit of a few rows, where a store whose acknowledged writes are already durable may skip the work."""

    def close(self) -> None:
        """Release files or connections."""
