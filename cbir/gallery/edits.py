"""Edits that cost what they change, in memory: `append_gallery` grows a gallery's arrays in place (amortised:
capacity grows by a quarter) and carries its per-row arrays over, so an add's cost does not grow with the gallery;
`select_gallery` keeps some rows. What is written to disk is in cbir.gallery.journal."""

from __future__ import annotations

import datasets
import numpy as np

from cbir.gallery.dataset import ID_COLUMN, Gallery
from cbir.gallery.journal import align

GROWTH = 1.25  # capacity of the grown arrays, relative to the rows they hold
_ARRAYS = ("labels", "colours", "types", "ids", "hashes", "_metadata_json")  # cached per-row arrays of a Gallery


def _grow(old: Gallery, name: str, new: np.ndarray) -> np.ndarray:
    """old.<name> with `new` rows appended, written into spare capacity kept beside the array (amortised O(new))."""
    have = old.__dict__[name]
    buf = getattr(old, "_capacity", {}).get(name)
    n, k = len(have), len(new)
    if buf is None or buf[:n].__array_interface__["data"][0] != have.__array_interface__["data"][0] or len(buf) < n + k:
        buf = np.empty((int((n + k) * GROWTH) + 256, have.shape[1]), np.float32)
        buf[:n] = have
    buf[n : n + k] = new
    return buf


def append_gallery(old: Gallery, rows: datasets.Dataset) -> Gallery:
    """`old` with `rows` appended (same columns as with_id_column(old), or aligned), its arrays carried over."""
    base = old.dataset
    if ID_COLUMN not in base.column_names:
        base = base.add_column(ID_COLUMN, [str(i) for i in old.ids], feature=datasets.Value("string"))
    base, rows = align(base, rows)
    new = Gallery(datasets.concatenate_datasets([base, rows]), old.spec, old.colour_spec)
    part = Gallery(rows, old.spec, old.colour_spec)
    for name in _ARRAYS:
        if name in old.__dict__:
            new.__dict__[name] = np.concatenate([old.__dict__[name], getattr(part, name)])
    capacity = {}
    for name in ("embeddings", "descriptors"):
        if name in old.__dict__ and old.__dict__[name] is not None:
            buf = _grow(old, name, getattr(part, name))
            capacity[name] = buf
            new.__dict__[name] = buf[: len(new)]
    new._capacity = capacity
    return new


def select_gallery(old: Gallery, keep: np.ndarray) -> Gallery:
    """`old` with only the rows `keep` (sorted row numbers), its arrays carried over (ids kept as a column)."""
    base = old.dataset
    if ID_COLUMN not in base.column_names:
        base = base.add_column(ID_COLUMN, [str(i) for i in old.ids], feature=datasets.Value("string"))
    new = Gallery(base.select(keep), old.spec, old.colour_spec)
    for name in (*_ARRAYS, "embeddings", "descriptors"):
        value = old.__dict__.get(name)
        if value is not None:
            new.__dict__[name] = value[keep]
    return new
