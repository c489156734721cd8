"""The FAISS store (one machine): exact flat, HNSW or IVF, with label filters as an id-selector bitmap.

FAISS graph indexes cannot remove vectors, so a delete or an upsert marks the old internal row
dead and every search excludes dead rows through the same bitmap that carries the filters.
Cosine is an inner product between unit vectors; l2 scores 1 / (1 + distance); ip is raw. Graph and
cell indexes search poorly under an inner product (it is not a metric), so for hnsw/ivf an ip store
keeps each row as [x, sqrt(R^2 - |x|^2)] under L2, which ranks rows exactly as x.q does
(Bachrach et al., 2014); R is 1.5x the largest norm of the first batch (larger rows are clipped).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from cbir.core.filters import Filters
from cbir.index import as_queries, l2_normalize
from cbir.stores.base import (
    LABEL_COLUMNS,
    Labels,
    VectorStore,
    cached_mask,
    check_batch,
    check_metric,
    empty_result,
    l2_to_score,
    pad,
)

FAISS_KINDS = ("flat", "hnsw", "ivf")


def import_faiss() -> Any:
    """The faiss module, or an ImportError that says how to get it."""
    try:
        import faiss
    except ImportError as e:
        raise ImportError(
            "the faiss store needs the package faiss-cpu (pip install faiss-cpu); the numpy store works without it"
        ) from e
    return faiss


class FaissStore(VectorStore):
    """`kind` flat (exact), hnsw (M links, ef_search candidates) or ivf (nlist cells trained on the first
    batch, nprobe scanned per query)."""

    def __init__(
        self,
        dim: int,
        metric: str = "cosine",
        kind: str = "hnsw",
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        nlist: int = 1024,
        nprobe: int = 32,
    ) -> None:
        if kind not in FAISS_KINDS:
            raise ValueError(f"unknown faiss index kind {kind!r}; expected one of {FAISS_KINDS}")
        self.faiss = import_faiss()
        self.dim, self.metric, self.kind = int(dim), check_metric(metric), kind
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.nlist, self.nprobe = int(nlist), int(nprobe)
        self._augment = metric == "ip" and kind != "flat"  # MIPS as L2 search, see the module docstring
        self._radius2 = 0.0
        self._faiss_metric = (
            self.faiss.METRIC_L2 if metric == "l2" or self._augment else self.faiss.METRIC_INNER_PRODUCT
        )
        self._width = self.dim + int(self._augment)
        self.index: Any = None if kind == "ivf" or self._augment else self._new_index()
        self._ext: list[np.ndarray] = []  # external id per internal row, in blocks
        self._lab: dict[str, list[np.ndarray]] = {c: [] for c in LABEL_COLUMNS}
        self._row: dict[int, int] = {}  # external id -> live internal row
        self._alive = np.zeros(0, bool)
        self._flat_cache: Optional[tuple[np.ndarray, dict[str, np.ndarray]]] = None
        self._masks: dict[str, Optional[np.ndarray]] = {}  # filter -> row mask, until the next write

    def _new_index(self, train: Optional[np.ndarray] = None) -> Any:
        f = self.faiss
        if self.kind == "flat":
            return f.IndexFlat(self._width, self._faiss_metric)
        if self.kind == "hnsw":
            index = f.IndexHNSWFlat(self._width, self.m, self._faiss_metric)
            index.hnsw.efConstruction = self.ef_construction
            return index
        nlist = max(1, min(self.nlist, len(train) // 39))  # FAISS wants ~39 training points per cell
        quantizer = f.IndexFlat(self._width, self._faiss_metric)
        index = f.IndexIVFFlat(quantizer, self._width, nlist, self._faiss_metric)
        index.train(train)
        self.nlist = nlist
        return index

    def _prepare(self, x: np.ndarray, rows: bool = False) -> np.ndarray:
        """Vectors as the index holds them: unit length for cosine, [x, sqrt(R^2 - |x|^2)] (rows) or [q, 0]
        (queries) for an augmented inner product."""
        x = np.asarray(x, dtype=np.float32)
        if self.metric == "cosine":
            x = l2_normalize(x)
        elif self._augment:
            sq = np.einsum("ij,ij->i", x, x)
            if rows and self._radius2 == 0.0:
                self._radius2 = float(2.25 * max(sq.max(), 1e-12))
            extra = np.sqrt(np.maximum(self._radius2 - sq, 0.0)) if rows else np.zeros(len(x), np.float32)
            x = np.hstack([x, extra[:, None].astype(np.float32)])
        return np.ascontiguousarray(x, dtype=np.float32)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, labels: Labels) -> None:
        ids, vectors = check_batch(ids, vectors, labels, self.dim)
        x = self._prepare(vectors, rows=True)
        if self.index is None:
            self.index = self._new_index(x)
        self.delete(ids)
        start = int(self.index.ntotal)
        self.index.add(x)
        self._ext.append(ids)
        for c in LABEL_COLUMNS:
            self._lab[c].append(np.asarray(labels[c], dtype=object))
        self._alive = np.concatenate([self._alive, np.ones(len(ids), bool)])
        self._row.update(zip(ids.tolist(), range(start, start + len(ids))))
        self._flat_cache = None
        self._masks = {}

    def delete(self, ids: Sequence[int]) -> None:
        for i in np.asarray(ids, dtype=np.int64).tolist():
            row = self._row.pop(i, None)
            if row is not None:
                self._alive[row] = False

    def _columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self._flat_cache is None:
            ext = np.concatenate(self._ext) if self._ext else np.empty(0, np.int64)
            lab = {c: np.concatenate(v) if v else np.empty(0, object) for c, v in self._lab.items()}
            self._flat_cache = (ext, lab)
        return self._flat_cache

    def _params(self, allowed: Optional[np.ndarray]) -> tuple[Any, Any]:
        """Search parameters carrying an id selector for the allowed internal rows (None = all rows)."""
        f = self.faiss
        sel, keep = None, None
        if allowed is not None:
            keep = np.packbits(allowed, bitorder="little")
            sel = f.IDSelectorBitmap(len(allowed), f.swig_ptr(keep))
        if self.kind == "hnsw":
            params = f.SearchParametersHNSW(sel=sel, efSearch=self.ef_search)
        elif self.kind == "ivf":
            params = f.SearchParametersIVF(sel=sel, nprobe=min(self.nprobe, self.nlist))
        else:
            params = f.SearchParameters(sel=sel)
        return params, keep  # keep: the bitmap must outlive the search

    def search(self, queries: np.ndarray, k: int, filters: Optional[Filters] = None) -> tuple[np.ndarray, np.ndarray]:
        q = self._prepare(as_queries(queries, self.dim))
        want = int(k)
        if not self._row:
            return empty_result(len(q), want)
        ext, lab = self._columns()
        mask = cached_mask(self._masks, lab, filters)
        allowed = self._alive if mask is None else self._alive & mask
        k = max(0, min(int(k), int(allowed.sum())))
        if k == 0:
            return empty_result(len(q), want)
        all_alive = mask is None and len(self._row) == len(self._alive)
        params, _keep = self._params(None if all_alive else allowed)
        raw, rows = self.index.search(q, k, params=params)
        if mask is not None and self.kind != "flat" and (rows < 0).any():
            raw, rows = self._exact(q, k, allowed)
        ids = np.where(rows >= 0, ext[np.maximum(rows, 0)], -1).astype(np.int64)
        if self._augment:  # |q~ - x~|^2 = |q|^2 + R^2 - 2 q.x
            raw = (np.einsum("ij,ij->i", q, q)[:, None] + self._radius2 - raw) / 2.0
        scores = l2_to_score(raw) if self.metric == "l2" else raw.astype(np.float32)
        return pad(ids, np.where(rows >= 0, scores, -np.inf).astype(np.float32), want)

    def _exact(self, q: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A scan of every allowed row: for a filter whose rows lie away from the query, where the graph or
        the probed cells run out of allowed rows and would answer fewer than k (README: Vector stores)."""
        f = self.faiss
        keep = np.packbits(allowed, bitorder="little")
        sel = f.IDSelectorBitmap(len(allowed), f.swig_ptr(keep))
        if self.kind == "hnsw":  # the flat storage under the graph, same metric and rows
            return f.downcast_index(self.index.storage).search(q, k, params=f.SearchParameters(sel=sel))
        return self.index.search(q, k, params=f.SearchParametersIVF(sel=sel, nprobe=self.nlist))

    def get(self, ids: Sequence[int]) -> np.ndarray:
        want = np.asarray(ids, dtype=np.int64).tolist()
        missing = [i for i in want if i not in self._row]
        if missing:
            raise KeyError(f"ids not in the store: {missing[:5]}")
        if not want:
            return np.empty((0, self.dim), np.float32)
        if self.kind == "ivf":
            self.index.make_direct_map()  # IVF lists are not addressable by row without it
        return np.stack([self.index.reconstruct(self._row[i])[: self.dim] for i in want]).astype(np.float32)

    def ids(self) -> np.ndarray:
        return np.fromiter(self._row, dtype=np.int64, count=len(self._row))

    @property
    def nbytes(self) -> int:
        """Approximate resident size: stored vectors plus HNSW links or IVF lists."""
        n = 0 if self.index is None else int(self.index.ntotal)
        size = n * self._width * 4
        if self.kind == "hnsw" and n:
            size += int(self.index.hnsw.neighbors.size()) * 4 + int(self.index.hnsw.offsets.size()) * 8
        elif self.kind == "ivf":
            size += n * 8 + self.nlist * self._width * 4
        return size
