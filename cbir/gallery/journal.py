"""The journal of live edits beside a gallery (`GALLERY/edits/`): an add's rows as an append-only shard, a removal as
a line of ids, each committed by one fsynced line of `journal.jsonl` and replayed in order when the gallery is loaded
(cbir.gallery.dataset.Gallery.load); cbir.gallery.live compacts it into the gallery.

Crash safety: a shard is written under a temporary name and renamed, then its journal line is appended and fsynced;
a journal line is the commit. A shard without its line, or a half-written last line, is ignored (and cleaned up by
compaction). Ids are stable: removals name ids, not row numbers."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Sequence

import datasets
import numpy as np

ID_COLUMN = "id"
EDITS_DIR = "edits"
JOURNAL = "journal.jsonl"


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
