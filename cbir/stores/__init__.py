"""Vector stores: one interface (cbir.stores.base.VectorStore), three backends (numpy, FAISS,
Milvus) chosen by a URI (`numpy`, `faiss`, `milvus:PATH`, `milvus://host:port`), and every
similarity method expressed as a search over stored per-image vectors (cbir.stores.methods)."""

from cbir.stores.base import LABEL_COLUMNS, METRICS, VectorStore
from cbir.stores.gallery import GalleryStore, fill_from_gallery, gallery_columns
from cbir.stores.methods import (
    FOREST_SHORTLIST,
    STORED_METHODS,
    Space,
    StoredMethod,
    methods_without_classifiers,
    register_space,
    register_stored_method,
)
from cbir.stores.sync import apply_edit, matching_prefix, open_gallery_store
from cbir.stores.uri import DEFAULT_STORE, STORE_HELP, StoreURI, describe, open_store, parse_store_uri

__all__ = [
    "DEFAULT_STORE",
    "FOREST_SHORTLIST",
    "GalleryStore",
    "LABEL_COLUMNS",
    "METRICS",
    "STORED_METHODS",
    "STORE_HELP",
    "Space",
    "StoreURI",
    "StoredMethod",
    "VectorStore",
    "apply_edit",
    "describe",
    "fill_from_gallery",
    "gallery_columns",
    "matching_prefix",
    "methods_without_classifiers",
    "open_gallery_store",
    "open_store",
    "parse_store_uri",
    "register_space",
    "register_stored_method",
]
