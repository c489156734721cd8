"""A live gallery: add and remove images without a restart, persisted to the gallery folder atomically.

Admin actions need the token in the environment variable CBIR_ADMIN_TOKEN. The folder is replaced by
writing the new version beside it and swapping the two (renameat2 RENAME_EXCHANGE where the kernel has
it, else two renames that `recover` completes), so a crash mid-write leaves a whole gallery behind.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

import datasets
import numpy as np

from cbir.embed.colour import COLOUR_COLUMN, colour_descriptor
from cbir.gallery.dataset import ID_COLUMN, SPEC_FILE, Gallery, unique_ids
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


def with_id_column(gallery: Gallery) -> datasets.Dataset:
    """The gallery's dataset with its ids written as an `id` column, so that later changes keep them."""
    ds = gallery.dataset
    if ID_COLUMN in ds.column_names:
        return ds
    return ds.add_column(ID_COLUMN, [str(i) for i in gallery.ids], feature=datasets.Value("string"))


def add_rows(gallery: Gallery, extractor: Any, images: Sequence[Any], labels: Sequence[Optional[str]]) -> Gallery:
    """A new gallery with the images (paths or bytes) appended, embedded by `extractor`; labels may be None.

    Every row keeps its id (an `id` column is written); a new image's id is its file name without extension
    (bytes: "added-" + the first 12 hex digits of its sha1), made unique against the ids already there."""
    if len(labels) not in (0, 1, len(images)):
        raise ValueError(f"give one label, or one label per image ({len(images)}); got {len(labels)}")
    labels = list(labels) * len(images) if len(labels) == 1 else list(labels) or [None] * len(images)
    blobs = [Path(im).read_bytes() if isinstance(im, (str, os.PathLike)) else bytes(im) for im in images]
    sha1s = [hashlib.sha1(b).hexdigest() for b in blobs]
    names = [
        Path(im).name if isinstance(im, (str, os.PathLike)) else f"added-{h[:12]}.png" for im, h in zip(images, sha1s)
    ]
    decoded = [load_image(b) for b in blobs]  # ImageError (a message for users) before anything changes
    vecs = extractor.embed_images(decoded)
    base = with_id_column(gallery)
    features = base.features
    rows: dict[str, list] = {c: [None] * len(blobs) for c in features}
    rows.update(label_columns(gallery, labels))
    rows.update(
        image=[{"bytes": b, "path": n} for b, n in zip(blobs, names)],
        embedding=[v.astype(gallery.spec.dtype) for v in vecs],
    )
    rows[ID_COLUMN] = unique_ids([Path(n).stem for n in names], taken=set(base[ID_COLUMN]))
    if gallery.colour_spec is not None:  # the new rows get descriptors too, so colour-aware methods keep working
        rows[COLOUR_COLUMN] = [colour_descriptor(im, gallery.colour_spec) for im in decoded]
    if "sha1" in features:
        rows["sha1"] = sha1s
    if "path" in features:
        rows["path"] = [f"added/{n}" for n in names]
    rows = {c: v for c, v in rows.items() if c in features}
    extra = datasets.Dataset.from_dict(rows, features=features)
    return Gallery(datasets.concatenate_datasets([base, extra]), gallery.spec, gallery.colour_spec)


def remove_rows(gallery: Gallery, indices: Sequence[int]) -> Gallery:
    """A new gallery without the rows `indices` (checked: gallery indices, duplicates allowed); ids are kept."""
    drop = check_indices(indices, len(gallery), "indices")
    keep = np.setdiff1d(np.arange(len(gallery)), drop)
    if keep.size == 0:
        raise ValueError("cannot remove every image: a gallery needs at least one")
    return Gallery(with_id_column(gallery).select(keep), gallery.spec, gallery.colour_spec)


class LiveGallery:
    """Adds and removes images of an engine's gallery, persisting each change to `folder` before it is served."""

    def __init__(self, engine: Any, folder: str | os.PathLike) -> None:
        self.engine = engine
        self.folder = Path(folder)
        self._lock = threading.Lock()
        recover(self.folder)

    def add(self, images: Sequence[Any], labels: Sequence[Optional[str]] = ()) -> list[int]:
        """Append images; returns their new gallery indices."""
        if not images:
            raise ValueError("no images to add")
        with self._lock:
            n = len(self.engine.gallery)
            self._commit(add_rows(self.engine.gallery, self.engine.extractor, images, labels), n)
            return list(range(n, len(self.engine.gallery)))

    def remove(self, indices: Sequence[int]) -> int:
        """Remove rows (later rows move up); returns how many were removed."""
        with self._lock:
            n = len(self.engine.gallery)
            drop = check_indices(indices, n, "indices")
            self._commit(remove_rows(self.engine.gallery, drop.tolist()), int(np.min(drop)))
            return n - len(self.engine.gallery)

    def _commit(self, gallery: Gallery, first_changed: int) -> None:
        """The folder first (the truth a restart reads), then the engine and its store from `first_changed` on."""
        save_atomically(gallery, self.folder)
        self.engine.set_gallery(Gallery.load(self.folder), first_changed)  # served from the files just written
