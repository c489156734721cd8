"""Store URIs: `numpy`, `faiss[:flat|hnsw|ivf]`, `milvus:PATH` (milvus-lite file), `milvus://host:port`
(a Milvus server or cluster); options after `?` (e.g. `faiss:hnsw?ef_search=128`,
`milvus:./g.db?index=IVF_FLAT&nlist=1024&nprobe=32`, `milvus://host:19530?consistency=Bounded`). One backend registry keyed by scheme."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qsl

from cbir.stores.base import MILVUS_SERVER_SCHEMES, VectorStore

DEFAULT_STORE = "numpy"
STORE_HELP = "numpy (exact, default), faiss[:hnsw|ivf|flat], milvus:PATH (milvus-lite file) or milvus://host:port"


@dataclass(frozen=True)
class StoreURI:
    """A parsed store setting: backend name, location (path or URL) and options."""

    backend: str
    location: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def persistent(self) -> bool:
        return self.backend == "milvus"

    @property
    def remote(self) -> bool:
        """A server: its calls wait on the network and its own polling, so a store's spaces may call at once."""
        return self.backend == "milvus" and self.location.startswith(MILVUS_SERVER_SCHEMES)


def parse_store_uri(uri: str) -> StoreURI:
    """`milvus:./demo.db` -> StoreURI("milvus", "./demo.db"); unknown schemes are a clear error."""
    text = (uri or DEFAULT_STORE).strip()
    text, _, query = text.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    if text.startswith("milvus://"):
        return StoreURI("milvus", "http://" + text[len("milvus://") :], options)
    scheme, _, location = text.partition(":")
    if scheme not in BACKENDS:
        raise ValueError(f"unknown store {uri!r}; use {STORE_HELP}")
    if scheme == "milvus" and not location:
        raise ValueError("milvus needs a file or a server: milvus:./gallery.db or milvus://host:19530")
    if scheme == "numpy" and location:
        raise ValueError("the numpy store lives in memory and takes no path; use milvus:PATH for a file")
    return StoreURI(scheme, location, options)


def _numpy(u: StoreURI, name: str, dim: int, metric: str) -> VectorStore:
    from cbir.stores.numpy_store import NumpyStore

    return NumpyStore(dim, metric)


def _faiss(u: StoreURI, name: str, dim: int, metric: str) -> VectorStore:
    from cbir.stores.faiss_store import FaissStore

    o = u.options
    ints = {k: int(o[k]) for k in ("m", "ef_construction", "ef_search", "nlist", "nprobe") if k in o}
    return FaissStore(dim, metric, kind=u.location or "hnsw", **ints)


def _milvus(u: StoreURI, name: str, dim: int, metric: str) -> VectorStore:
    from cbir.stores.milvus_store import MilvusStore

    o = dict(u.options)
    index = o.pop("index", "FLAT").upper()
    prefix = o.pop("collection", "gallery")
    token = o.pop("token", "")
    consistency = o.pop("consistency", "Session").capitalize()
    build = {k: int(o.pop(k)) for k in ("nlist", "M", "efConstruction") if k in o}
    search = {k: int(v) for k, v in o.items() if k in ("nprobe", "ef")}
    return MilvusStore(u.location, f"{prefix}_{name}", dim, metric, index, build, search, token=token,
                       consistency=consistency)


BACKENDS: dict[str, Callable[[StoreURI, str, int, str], VectorStore]] = {
    "numpy": _numpy,
    "faiss": _faiss,
    "milvus": _milvus,
}


def open_store(uri: str | StoreURI, name: str, dim: int, metric: str) -> VectorStore:
    """The VectorStore `name` (one space) of `dim` columns under `metric` on the backend `uri` names."""
    u = uri if isinstance(uri, StoreURI) else parse_store_uri(uri)
    return BACKENDS[u.backend](u, name, dim, metric)


def describe(uri: str | StoreURI) -> str:
    u = uri if isinstance(uri, StoreURI) else parse_store_uri(uri)
    opts = "".join(f" {k}={v}" for k, v in u.options.items() if k != "token")
    return f"{u.backend}{':' + u.location if u.location else ''}{opts}"


