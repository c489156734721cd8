"""The Milvus store: milvus-lite (an embedded file, `milvus:./gallery.db`) or a Milvus server or
cluster by URL (`milvus://host:19530`), through the same pymilvus client and the same code.

Label filters become a Milvus boolean expression (`type in ["dress"] and colour in ["red"]`)
evaluated inside Milvus before top-k. pymilvus is imported only when a Milvus store is opened.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional, Sequence

import numpy as np

from cbir.core.filters import Filters, normalise_filters
from cbir.index import as_queries
from cbir.stores.base import (
    LABEL_COLUMNS,
    MILVUS_SERVER_SCHEMES,
    Labels,
    StoreUnavailableError,
    VectorStore,
    check_batch,
    check_metric,
    empty_result,
    l2_to_score,
)

MILVUS_METRICS = {"cosine": "COSINE", "l2": "L2", "ip": "IP"}
MILVUS_INDEXES = ("FLAT", "IVF_FLAT", "HNSW", "AUTOINDEX")
# Session (default): a search sees every write this process made (an added image is found at once) without
# waiting for the server's time tick, which Strong does on every search (200-300 ms on a Milvus server, see
# docs/stores.md); Strong also sees other processes' writes at once; Bounded/Eventually may miss the newest writes.
MILVUS_CONSISTENCY = ("Session", "Strong", "Bounded", "Eventually")
MAX_LABEL_CHARS = 256
UNREACHABLE_CODES = (2,)  # pymilvus's ErrorCode.UNEXPECTED_ERROR: "Fail connecting to server ... unavailable"
NOT_LOADED_CODE = 101  # "collection not loaded": a server that restarted loads its collections again, a while
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def import_pymilvus() -> Any:
    """The pymilvus module, or an ImportError that says how to get it."""
    try:
        import pymilvus
    except ImportError as e:
        raise ImportError(
            "the milvus store needs pymilvus (and milvus-lite for a local file): "
            "pip install pymilvus milvus-lite; the numpy and faiss stores work without them"
        ) from e
    return pymilvus


def milvus_filter(filters: Optional[Filters], columns: Sequence[str] = LABEL_COLUMNS) -> str:
    """`{column: [values]}` as a Milvus boolean expression ("" = no filter); values are quoted as JSON
    strings (backslash and quote escaped), column names must be known label columns."""
    parts = []
    for column, values in normalise_filters(filters).items():
        if column not in columns:
            raise ValueError(f"cannot filter on {column!r}: the gallery has label columns {sorted(columns)}")
        quoted = ", ".join(json.dumps(v, ensure_ascii=False) for v in values)
        parts.append(f"{column} in [{quoted}]")
    return " and ".join(parts)


class MilvusStore(VectorStore):
    """One Milvus collection: int64 primary key `id`, FLOAT_VECTOR `vector`, VARCHAR label columns."""

    def __init__(
        self,
        uri: str,
        collection: str,
        dim: int,
        metric: str = "cosine",
        index: str = "FLAT",
        params: Optional[dict[str, Any]] = None,
        search_params: Optional[dict[str, Any]] = None,
        token: str = "",
        consistency: str = "Session",
    ) -> None:
        if not _NAME.match(collection):
            raise ValueError(f"invalid Milvus collection name {collection!r} (letters, digits and _ only)")
        if index not in MILVUS_INDEXES:
            raise ValueError(f"unknown Milvus index {index!r}; expected one of {MILVUS_INDEXES}")
        if consistency not in MILVUS_CONSISTENCY:
            raise ValueError(f"unknown Milvus consistency {consistency!r}; expected one of {MILVUS_CONSISTENCY}")
        self.consistency = consistency
        pm = import_pymilvus()
        self.dim, self.metric, self.collection = int(dim), check_metric(metric), collection
        self.uri, self._token, self._pm = uri, token, pm
        self.server = uri.startswith(MILVUS_SERVER_SCHEMES)  # else a milvus-lite file
        self.client = self._connect()
        self.search_params = {"metric_type": MILVUS_METRICS[metric], "params": dict(search_params or {})}
        if self.client.has_collection(collection):
            self._check_existing(pm)
            self.client.load_collection(collection)
        else:
            self._create(pm, index, params or {})  # created with its index, hence loaded

    def _connect(self) -> Any:
        try:
            return self._pm.MilvusClient(uri=self.uri, token=self._token)
        except self._pm.MilvusException as e:
            raise self._unavailable(e) from e

    def _unavailable(self, e: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the Milvus server at {self.uri} cannot be reached ({getattr(e, 'message', e)}); "
            "searches resume once it is back"
        )

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """client.<method>(collection, ...), reconnecting once when the server went away (pymilvus's own client does
        not recover after a server restart); still unreachable -> StoreUnavailableError."""
        for attempt in (0, 1):
            if self.client is None:  # dropped by an earlier failure: reconnect (or say the server is still away)
                self.client = self._connect()
            try:
                return getattr(self.client, method)(self.collection, *args, **kwargs)
            except self._pm.MilvusException as e:
                if getattr(e, "code", None) == NOT_LOADED_CODE and not attempt:  # a restarted server reloading
                    self.client.load_collection(self.collection)  # blocks until loaded
                    continue
                if getattr(e, "code", None) not in UNREACHABLE_CODES:
                    raise
                self._drop_client()
                if attempt:
                    raise self._unavailable(e) from e
        raise AssertionError("unreachable")

    def _drop_client(self) -> None:
        client, self.client = self.client, None
        try:
            client.close()
        except Exception:  # noqa: BLE001 - its channel is broken anyway
            pass

    def _create(self, pm: Any, index: str, params: dict[str, Any]) -> None:
        schema = pm.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", pm.DataType.INT64, is_primary=True)
        schema.add_field("vector", pm.DataType.FLOAT_VECTOR, dim=self.dim)
        for c in LABEL_COLUMNS:
            schema.add_field(c, pm.DataType.VARCHAR, max_length=MAX_LABEL_CHARS)
        ip = self.client.prepare_index_params()
        ip.add_index(field_name="vector", index_type=index, metric_type=MILVUS_METRICS[self.metric], params=params)
        # Strong for queries and gets (ids, counts: rare, exact); searches pass the store's own consistency level
        self.client.create_collection(self.collection, schema=schema, index_params=ip, consistency_level="Strong")

    def _check_existing(self, pm: Any) -> None:
        """An existing collection must have this store's dimension; the metric is checked by its index."""
        desc = self.client.describe_collection(self.collection)
        dims = [f.get("params", {}).get("dim") for f in desc.get("fields", []) if f.get("name") == "vector"]
        if dims and int(dims[0]) != self.dim:
            raise ValueError(
                f"Milvus collection {self.collection!r} holds {dims[0]}-d vectors, not {self.dim}-d: "
                "it was built from another backbone; use another file or collection"
            )

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, labels: Labels) -> None:
        ids, vectors = check_batch(ids, vectors, labels, self.dim)
        cols = {c: [str(v) for v in labels[c]] for c in LABEL_COLUMNS}
        rows = [
            {"id": int(i), "vector": vectors[r], **{c: cols[c][r] for c in LABEL_COLUMNS}} for r, i in enumerate(ids)
        ]
        self._call("upsert", rows)

    def delete(self, ids: Sequence[int]) -> None:
        ids = [int(i) for i in ids]
        if ids:
            self._call("delete", ids=ids)

    def search(self, queries: np.ndarray, k: int, filters: Optional[Filters] = None) -> tuple[np.ndarray, np.ndarray]:
        q = as_queries(queries, self.dim)
        expr = milvus_filter(filters)
        k = int(k)
        if k <= 0:
            return empty_result(len(q), max(k, 0))
        res = self._call(
            "search", data=list(q), limit=k, filter=expr, output_fields=[], search_params=self.search_params,
            consistency_level=self.consistency,
        )
        ids, scores = empty_result(len(q), k)
        for r, hits in enumerate(res):
            for j, h in enumerate(hits):
                ids[r, j], scores[r, j] = int(h["id"]), float(h["distance"])
        if self.metric == "l2":  # Milvus reports squared L2 distance
            scores = np.where(ids >= 0, l2_to_score(scores), -np.inf).astype(np.float32)
        return ids, scores

    def get(self, ids: Sequence[int]) -> np.ndarray:
        want = [int(i) for i in ids]
        if not want:
            return np.empty((0, self.dim), np.float32)
        rows = self._call("get", ids=want, output_fields=["id", "vector"])
        by_id = {int(r["id"]): r["vector"] for r in rows}
        missing = [i for i in want if i not in by_id]
        if missing:
            raise KeyError(f"ids not in the store: {missing[:5]}")
        return np.asarray([by_id[i] for i in want], dtype=np.float32)

    def ids(self) -> np.ndarray:
        out: list[int] = []
        it = self._call("query_iterator", batch_size=10_000, filter="", output_fields=["id"])
        try:
            while True:
                batch = it.next()
                if not batch:
                    break
                out += [int(r["id"]) for r in batch]
        finally:
            it.close()
        return np.asarray(out, dtype=np.int64)

    def count(self) -> int:
        res = self._call("query", filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def flush(self, edit: bool = False) -> None:
        """Seal the written segments (durable on disk for milvus-lite). A server has every acknowledged write in
        its log already, and Milvus advises against a flush per small insert (each one seals a tiny segment and
        waits for it: ~0.5 s per space per edit), so a live edit on a server is left to its automatic flush."""
        if edit and self.server:
            return
        self._call("flush")

    def close(self) -> None:
        if self.client is not None:
            self._drop_client()
