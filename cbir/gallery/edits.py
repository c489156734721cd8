"""Edits that cost what they change: a live add writes only its new rows (an append-only shard under
`GALLERY/edits/`) and a remove writes only a deletion record; both are lines of `edits/journal.jsonl`, replayed in
order whenever the gallery is loaded and folded into the gallery by `compact` (at app start, or on request).

Crash safety: a shard is written under a temporary name and renamed, then its journal line is appended and fsynced;
a journal line is the commit. A shard without its line, or a half-written last line, is ignored (and cleaned up by
`compact`). Ids are stable: removals name ids, not row numbers. In memory, `append_gallery` grows the gallery's
arrays in place (amortised: capacity grows by a quarter), so an add's cost does not grow with the gallery."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

import datasets
import numpy as np

from cbir.gallery.dataset import ID_COLUMN, Gallery

EDITS_DIR = "edits"
JOURNAL = "journal.jsonl"
GROWTH = 1.25  # capacity of the grown arrays, relative to the rows they hold
_ARRAYS = ("labels", "colours", "types", "ids", "hashes", "_metadata_json")  # cached per-row arrays of a Gallery


def journal_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / EDITS_DIR / JOURNAL


def read_journal(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """The committed edits, in order (a half-written last line, from a crash, is not one)."""
    path = journal_path(folder)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("op") in ("add", "remove"):
            out.append(entry)
    return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append(folder: Path, entry: dict[str, Any]) -> None:
    """Commit one edit: its journal line, flushed to disk (a line after a torn one starts on a line of its own)."""
    path = journal_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes()[-1:] == b"\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(("\n" if torn else "") + json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(path.parent)


def record_add(folder: str | os.PathLike, rows: datasets.Dataset) -> str:
    """Persist new rows: their own shard (written aside, then renamed), then the journal line that commits it."""
    folder = Path(folder)
    edits = folder / EDITS_DIR
    edits.mkdir(parents=True, exist_ok=True)
    name = f"add-{uuid.uuid4().hex[:12]}"
    tmp = edits / f".tmp-{name}"
    rows.flatten_indices().save_to_disk(str(tmp))
    os.rename(tmp, edits / name)
    _fsync_dir(edits)
    _append(folder, {"op": "add", "shard": name, "rows": len(rows)})
    return name


def record_remove(folder: str | os.PathLike, ids: Sequence[str]) -> None:
    """Persist a removal: one journal line naming the removed items' ids."""
    _append(Path(folder), {"op": "remove", "ids": [str(i) for i in ids]})


def align(a: datasets.Dataset, b: datasets.Dataset) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Two datasets with the same columns in the same order: a column only one has is added to the other, empty
    (e.g. `metadata` when the first added item brings some)."""
    for name, feature in b.features.items():
        if name not in a.column_names:
            a = a.add_column(name, [None] * len(a), feature=feature)
    for name, feature in a.features.items():
        if name not in b.column_names:
            b = b.add_column(name, [None] * len(b), feature=feature)
    return a, b if b.column_names == a.column_names else b.select_columns(a.column_names)


def replay(base: datasets.Dataset, folder: str | os.PathLike, ids: Sequence[str]) -> datasets.Dataset:
    """`base` (the compacted gallery, whose item ids are `ids`) with the committed edits of `folder` applied in order."""
    entries = read_journal(folder)
    if not entries:
        return base
    if ID_COLUMN not in base.column_names:
        base = base.add_column(ID_COLUMN, [str(i) for i in ids], feature=datasets.Value("string"))
    parts, alive = [base], np.ones(len(base), bool)
    where = {str(i): r for r, i in enumerate(ids)}
    total = len(base)
    for e in entries:
        if e["op"] == "add":
            shard = datasets.load_from_disk(str(Path(folder) / EDITS_DIR / e["shard"]))
            parts.append(shard)
            where.update({str(i): total + r for r, i in enumerate(shard[ID_COLUMN])})
            alive = np.concatenate([alive, np.ones(len(shard), bool)])
            total += len(shard)
        else:
            for i in e["ids"]:
                r = where.pop(str(i), None)
                if r is not None:
                    alive[r] = False
    joined = parts[0]
    for p in parts[1:]:
        joined, p = align(joined, p)
        joined = datasets.concatenate_datasets([joined, p])
    return joined if alive.all() else joined.select(np.flatnonzero(alive))


def compact(folder: str | os.PathLike) -> bool:
    """Fold the journal into the gallery (one atomic rewrite: cbir.gallery.live.save_atomically) and drop shards no
    line commits; True when there was something to fold."""
    from cbir.gallery.live import save_atomically

    folder = Path(folder)
    edits = folder / EDITS_DIR
    if not edits.exists():
        return False
    if not read_journal(folder):
        shutil.rmtree(edits, ignore_errors=True)  # only uncommitted leftovers of a crash
        return False
    g = Gallery.load(folder)
    save_atomically(Gallery(g.dataset.flatten_indices(), g.spec, g.colour_spec), folder)
    return True


# -- in memory: a gallery grown or shrunk without re-reading it ------------------------------------------------------


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
