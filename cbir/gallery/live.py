"""A live gallery: add and remove images without a restart, persisted before they are served.

Admin actions need the token in the environment variable CBIR_ADMIN_TOKEN. An edit writes only what it changes
(cbir.gallery.edits: the new rows as a shard, a removal as a journal line); the journal is folded into the gallery
when the app starts (`compact`), which replaces the folder by writing the new version beside it and swapping the two
(renameat2 RENAME_EXCHANGE where the kernel has it, else two renames that `recover` completes), so a crash mid-write
leaves a whole gallery behind.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

import datasets
import numpy as np

from cbir.embed.colour import COLOUR_COLUMN, colour_descriptor
from cbir.gallery.dataset import ID_COLUMN, METADATA_COLUMN, SPEC_FILE, Gallery, unique_ids
from cbir.gallery.edits import append_gallery, select_gallery
from cbir.gallery.journal import EDITS_DIR, read_journal, record_add, record_remove
from cbir.core.rows import check_indices
from cbir.images import load_image

ADMIN_TOKEN_ENV = "CBIR_ADMIN_TOKEN"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class AdminTokenError(PermissionError):
    """A missing or wrong admin token; the message is for the user and names CBIR_ADMIN_TOKEN."""


def admin_token() -> Optional[str]:
    """The admin token from the environment, or None (then the live gallery is off)."""
    return os.environ.get(ADMIN_TOKEN_ENV) or None


def check_token(given: Any, expected: Optional[str]) -> None:
    """Raise AdminTokenError unless `given` equals the configured token (constant-time comparison)."""
    if not expected:
        raise AdminTokenError(
            f"Adding and removing gallery images is off: start the app with the environment variable "
            f"{ADMIN_TOKEN_ENV} set to a secret token to enable it."
        )
    if not isinstance(given, str) or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AdminTokenError(f"Wrong or missing admin token: pass the value of {ADMIN_TOKEN_ENV} as `token`.")


def split_label(label: Optional[str]) -> tuple[str, str, str]:
    """(label, colour, type) from "colour_type", a bare type ("dress"), or nothing ("", "", "")."""
    text = str(label or "").strip().lower()
    if "_" in text:
        colour, _, garment = text.partition("_")
        return text, colour, garment
    return text, "", text


def label_columns(gallery: Gallery, labels: Sequence[Optional[str]]) -> dict[str, list[str]]:
    """The label columns of new rows, only those the gallery has (a type-only gallery has no colour column)."""
    parts = [split_label(lab) for lab in labels]
    values = {"label": [p[0] for p in parts], "colour": [p[1] for p in parts], "type": [p[2] for p in parts]}
    columns = gallery.dataset.column_names
    if "colour" in columns and "type" not in columns:  # a colour-only gallery: a bare label ("red") is a colour
        values["colour"] = [c or (lab if "_" not in lab else "") for c, lab in zip(values["colour"], values["label"])]
    return {c: v for c, v in values.items() if c in columns}


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where the kernel or libc cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    return fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _siblings(folder: Path, kind: str) -> list[Path]:
    return sorted(folder.parent.glob(f".{folder.name}.{kind}-*"))


def recover(folder: str | os.PathLike) -> None:
    """Finish or undo an interrupted save: restore the previous version if the folder is gone, drop leftovers."""
    folder = Path(folder)
    if not folder.exists():
        for old in reversed(_siblings(folder, "old")):
            if (old / SPEC_FILE).is_file():
                os.rename(old, folder)
                break
    for stale in _siblings(folder, "new") + _siblings(folder, "old"):
        shutil.rmtree(stale, ignore_errors=True)


def save_atomically(gallery: Gallery, folder: str | os.PathLike) -> Path:
    """Write `gallery` to `folder` so that, at every moment, the folder (or its `.old` copy) is a whole gallery."""
    folder = Path(folder)
    tag = uuid.uuid4().hex[:8]
    new, old = folder.parent / f".{folder.name}.new-{tag}", folder.parent / f".{folder.name}.old-{tag}"
    gallery.save(new)
    if not folder.exists():
        os.rename(new, folder)
    elif _exchange(new, folder):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the previous version
    else:
        os.rename(folder, old)
        os.rename(new, folder)
        shutil.rmtree(old, ignore_errors=True)
    return folder


def compact(folder: str | os.PathLike) -> bool:
    """Fold the journal into the gallery (one atomic rewrite: cbir.gallery.live.save_atomically) and drop shards no
    line commits; True when there was something to fold."""
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


def with_id_column(gallery: Gallery) -> datasets.Dataset:
    """The gallery's dataset with its ids written as an `id` column, so that later changes keep them."""
    ds = gallery.dataset
    if ID_COLUMN in ds.column_names:
        return ds
    return ds.add_column(ID_COLUMN, [str(i) for i in gallery.ids], feature=datasets.Value("string"))


def _per_image(values: Sequence[Any], n: int, name: str) -> list[Any]:
    """One value for every image, or one per image; none: None for each."""
    if len(values) not in (0, 1, n):
        raise ValueError(f"give one {name}, or one {name} per image ({n}); got {len(values)}")
    return list(values) * n if len(values) == 1 else list(values) or [None] * n


def new_rows(gallery: Gallery, extractor: Any, images: Sequence[Any], labels: Sequence[Optional[str]],
             metadata: Sequence[Optional[dict]] = ()) -> datasets.Dataset:
    """The rows of images (paths or bytes) to append to `gallery`, embedded by `extractor`; labels and metadata
    (dicts of the item's catalogue columns) may be None. A new image's id is its file name without extension
    (bytes: "added-" + the first 12 hex digits of its sha1), made unique against the ids already there."""
    labels = _per_image(labels, len(images), "label")
    metadata = _per_image(metadata, len(images), "metadata")
    if any(m is not None and not isinstance(m, dict) for m in metadata):
        raise ValueError("metadata must be an object of the item's columns (e.g. {\"title\": ..., \"price\": ...})")
    blobs = [Path(im).read_bytes() if isinstance(im, (str, os.PathLike)) else bytes(im) for im in images]
    sha1s = [hashlib.sha1(b).hexdigest() for b in blobs]
    names = [
        Path(im).name if isinstance(im, (str, os.PathLike)) else f"added-{h[:12]}.png" for im, h in zip(images, sha1s)
    ]
    decoded = [load_image(b) for b in blobs]  # ImageError (a message for users) before anything changes
    vecs = extractor.embed_images(decoded)
    features = with_id_column(gallery).features.copy()
    if any(metadata) and METADATA_COLUMN not in features:
        features[METADATA_COLUMN] = datasets.Value("string")
    rows: dict[str, list] = {c: [None] * len(blobs) for c in features}
    rows.update(label_columns(gallery, labels))
    rows.update(
        image=[{"bytes": b, "path": n} for b, n in zip(blobs, names)],
        embedding=[v.astype(gallery.spec.dtype) for v in vecs],
    )
    rows[ID_COLUMN] = unique_ids([Path(n).stem for n in names], taken=set(gallery.ids.tolist()))
    if METADATA_COLUMN in features:
        rows[METADATA_COLUMN] = [json.dumps(m or {}, ensure_ascii=False, default=str) for m in metadata]
    if gallery.colour_spec is not None:  # the new rows get descriptors too, so colour-aware methods keep working
        rows[COLOUR_COLUMN] = [colour_descriptor(im, gallery.colour_spec) for im in decoded]
    if "sha1" in features:
        rows["sha1"] = sha1s
    if "path" in features:
        rows["path"] = [f"added/{n}" for n in names]
    return datasets.Dataset.from_dict({c: v for c, v in rows.items() if c in features}, features=features)


def with_id_column(gallery: Gallery) -> datasets.Dataset:
    """The gallery's dataset with its ids written as an `id` column, so that later changes keep them."""
    ds = gallery.dataset
    if ID_COLUMN in ds.column_names:
        return ds
    return ds.add_column(ID_COLUMN, [str(i) for i in gallery.ids], feature=datasets.Value("string"))


def add_rows(gallery: Gallery, extractor: Any, images: Sequence[Any], labels: Sequence[Optional[str]],
             metadata: Sequence[Optional[dict]] = ()) -> Gallery:
    """A new gallery with the images appended (new_rows); every row keeps its id (an `id` column is written)."""
    return append_gallery(gallery, new_rows(gallery, extractor, images, labels, metadata))


def remove_rows(gallery: Gallery, indices: Sequence[int]) -> Gallery:
    """A new gallery without the rows `indices` (checked: gallery indices, duplicates allowed); ids are kept."""
    drop = check_indices(indices, len(gallery), "indices")
    keep = np.setdiff1d(np.arange(len(gallery)), drop)
    if keep.size == 0:
        raise ValueError("cannot remove every image: a gallery needs at least one")
    return select_gallery(gallery, keep)


class LiveGallery:
    """Adds and removes images of an engine's gallery, persisting each change to `folder` before it is served: only
    the change is written (cbir.gallery.edits); the journal of earlier edits is compacted when this starts."""

    def __init__(self, engine: Any, folder: str | os.PathLike, compact_now: bool = True) -> None:
        self.engine = engine
        self.folder = Path(folder)
        self._lock = threading.Lock()
        recover(self.folder)
        if compact_now:
            compact(self.folder)

    def add(self, images: Sequence[Any], labels: Sequence[Optional[str]] = (),
            metadata: Sequence[Optional[dict]] = ()) -> list[int]:
        """Append images (with their labels and metadata); returns their new gallery indices."""
        if not images:
            raise ValueError("no images to add")
        with self._lock:
            g = self.engine.gallery
            n = len(g)
            rows = new_rows(g, self.engine.extractor, images, labels, metadata)
            record_add(self.folder, rows)  # the folder first: the truth a restart reads
            self.engine.set_gallery(append_gallery(g, rows), n)
            return list(range(n, len(self.engine.gallery)))

    def remove(self, indices: Sequence[int]) -> int:
        """Remove rows (later rows move up; ids stay); returns how many were removed."""
        with self._lock:
            g = self.engine.gallery
            n = len(g)
            drop = check_indices(indices, n, "indices")
            smaller = remove_rows(g, drop.tolist())
            record_remove(self.folder, np.unique(g.ids[drop]).tolist())
            self.engine.set_gallery(smaller, int(np.min(drop)))
            return n - len(self.engine.gallery)

    def compact(self) -> bool:
        """Fold the edit journal into the gallery folder now (on request); the served gallery is unchanged."""
        with self._lock:
            return compact(self.folder)
