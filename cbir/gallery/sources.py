"""Every way a catalogue comes, read into ImageRecords: class folders, a flat or nested folder of images, a manifest
file (CSV, JSON Lines, Parquet) with an `image` column and any others. What the build's first line says is
`Catalogue.summary`."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from cbir.gallery.dataset import IMAGE_EXTENSIONS, ImageRecord, derive_ids, file_sha1, scan_image_folder, unique_ids
from cbir.gallery.labels import Label, LabelError, parse_label

LABEL_MODES = ("auto", "folders", "none")
IMAGE_COLUMN = "image"
LABEL_FIELDS = ("id", "type", "colour", "label")  # read as the item's id and labels; every other column is metadata


class ManifestError(ValueError):
    """A manifest that cannot be read as it is: the message names the file, the row and what is wrong."""


@dataclass(frozen=True)
class Catalogue:
    """The records of one source, how it was read (the build's first line) and the rows left out (--skip-bad)."""

    records: list[ImageRecord]
    summary: str
    skipped: dict[str, str] = field(default_factory=dict)


def _images_below(root: Path) -> list[Path]:
    """Every image file under `root` at any depth (hidden files and folders left out), sorted by relative path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in filenames
                if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def reads_as_class_folders(root: Path, files: Sequence[Path]) -> bool:
    """The guess: every image sits exactly one folder below `root` (root/<class>/photo.jpg), as in class folders."""
    return bool(files) and all(len(f.relative_to(root).parts) == 2 for f in files)


def read_folder(root: str | os.PathLike, labels: str = "auto") -> Catalogue:
    """A folder of images: class folders (one level of subfolders, or `labels="folders"`), else every image at any
    depth an item without a label whose id is its relative path without the extension (`labels="none"`)."""
    root = Path(root)
    if labels not in LABEL_MODES:
        raise ValueError(f"labels must be one of {LABEL_MODES}, not {labels!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = _images_below(root)
    if labels == "folders" or (labels == "auto" and reads_as_class_folders(root, files)):
        records = scan_image_folder(root)
        n_classes = len({r.label for r in records})
        return Catalogue(records, f"read {root} as class folders: {len(records)} images in {n_classes} classes, "
                                  "each folder name a label (--labels none: every image an item without a label)")
    if not files:
        raise LabelError(f"no images found under {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} at any depth)")
    records = [ImageRecord(f, f.relative_to(root).as_posix(), Label(None, None), file_sha1(f),
                           id=f.relative_to(root).with_suffix("").as_posix()) for f in files]
    depth = "in the folder itself" if all(len(f.relative_to(root).parts) == 1 for f in files) else "at any depth"
    hint = "" if labels == "none" else " (--labels folders reads one level of subfolders as classes)"
    return Catalogue(records, f"read {root} as a flat folder: {len(records)} images {depth}, no labels, "
                              f"id = path without extension{hint}")


# -- manifests ------------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A cell as JSON-able Python: numpy scalars unwrapped, NaN and pandas' missing values as None."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is not None and type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _read_csv(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    frame = pd.read_csv(path, dtype={c: str for c in (IMAGE_COLUMN, *LABEL_FIELDS)}, keep_default_na=False,
                        na_values=[""])
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: line {n} is not JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ManifestError(f"{path}: line {n} is not a JSON object")
        rows.append(row)
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return [{k: _plain(v) for k, v in row.items()} for row in pq.read_table(path).to_pylist()]


MANIFEST_READERS: dict[str, Callable[[Path], list[dict[str, Any]]]] = {
    ".csv": _read_csv, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".parquet": _read_parquet,
}


def is_manifest(source: str | os.PathLike) -> bool:
    """Whether `source` is a manifest file (by extension: MANIFEST_READERS)."""
    p = Path(source)
    return p.is_file() and p.suffix.lower() in MANIFEST_READERS


def row_label(row: Mapping[str, Any]) -> Label:
    """The item's label from its `label`, `type` and `colour` values (`type` / `colour` win over what `label` gives)."""
    text = str(row.get("label") or "").strip()
    base = parse_label(text) if text.strip("_- .") else Label(None, None)
    colour = str(row.get("colour") or "").strip().lower() or base.colour
    garment = str(row.get("type") or "").strip().lower() or base.type
    if text and not row.get("colour") and not row.get("type"):
        return base
    return Label(colour, garment, base.name_ if text else None)


def check_image(path: Path) -> Optional[str]:
    """None when `path` is an image file PIL can open (header and structure, no full decode), else the reason."""
    if not path.is_file():
        return f"image file not found: {path}"
    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"unreadable image {path}: {e}"
    return None


def records_from_rows(rows: Sequence[Mapping[str, Any]], base: Path, where: str, skip_bad: bool = False,
                      check: Callable[[Path], Optional[str]] = check_image) -> tuple[list[ImageRecord], dict[str, str]]:
    """ImageRecords of manifest rows: `image` (relative to `base` or absolute), optional unique `id`, labels, and
    every other column as metadata. A bad row is a ManifestError naming it, or with `skip_bad` left out and returned
    as {"row N": reason}."""
    records: list[ImageRecord] = []
    skipped: dict[str, str] = {}
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, 1):
        image = str(row.get(IMAGE_COLUMN) or "").strip()
        path = Path(image) if Path(image).is_absolute() else base / image
        item_id = None if row.get("id") in (None, "") else str(row["id"]).strip()
        problem = "no image path" if not image else check(path)
        if problem is None and item_id is not None and item_id in seen:
            problem = f"id {item_id!r} repeats row {seen[item_id]}"
        if problem is None:
            try:
                label = row_label(row)
            except LabelError as e:
                problem = str(e)
        if problem is not None:
            if not skip_bad:
                raise ManifestError(f"{where}: row {n}: {problem} (--skip-bad leaves bad rows out with a warning)")
            skipped[f"row {n}"] = problem
            continue
        if item_id is not None:
            seen[item_id] = n
        metadata = {k: _plain(v) for k, v in row.items() if k != IMAGE_COLUMN and k not in LABEL_FIELDS}
        records.append(ImageRecord(path, image, label, file_sha1(path), id=item_id, metadata=metadata))
    return records, skipped


def with_ids(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """Records whose missing ids are made from their image paths (derive_ids), unique against the ids given."""
    lacking = [i for i, r in enumerate(records) if r.id is None]
    if not lacking:
        return list(records)
    made = unique_ids(derive_ids([records[i].relpath for i in lacking]), taken={r.id for r in records if r.id})
    out = list(records)
    for i, new in zip(lacking, made):
        out[i] = replace(out[i], id=new)
    return out


def read_manifest(path: str | os.PathLike, skip_bad: bool = False) -> Catalogue:
    """A CSV, JSON Lines or Parquet manifest (by extension); image paths relative to its folder or absolute."""
    path = Path(path)
    reader = MANIFEST_READERS.get(path.suffix.lower())
    if reader is None:
        raise ManifestError(f"{path}: a manifest must end in {', '.join(MANIFEST_READERS)}")
    rows = reader(path)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if IMAGE_COLUMN not in columns:
        raise ManifestError(f"{path} has no {IMAGE_COLUMN!r} column (its columns: {', '.join(columns) or 'none'}); "
                            "name the column of image paths `image`")
    records, skipped = records_from_rows(rows, path.parent, str(path), skip_bad)
    records = with_ids(records)
    if not records:
        raise ManifestError(f"{path}: no usable rows ({len(skipped)} bad)")
    meta = [c for c in columns if c != IMAGE_COLUMN and c not in LABEL_FIELDS]
    labels = [c for c in ("type", "colour", "label") if c in columns]
    summary = (f"read manifest {path}: {len(records)} items; id from {'its id column' if 'id' in columns else 'file names'}"
               f", labels from {', '.join(labels) or 'none'}, metadata {', '.join(meta) or 'none'}")
    return Catalogue(records, summary, skipped)


def read_source(source: str | os.PathLike, labels: str = "auto", skip_bad: bool = False) -> Catalogue:
    """A folder (read_folder) or a manifest file (read_manifest); `datasets` sources stream instead (cbir.gallery.build)."""
    if is_manifest(source):
        return read_manifest(source, skip_bad)
    return read_folder(source, labels)


# -- held-out items: the app's example photos for a custom gallery ------------------------------------------------

HOLDOUT_FILE = "holdout.json"


def holdout_path(gallery: str | os.PathLike) -> Path:
    """Where a gallery's held-out items are listed: holdout.json beside the gallery folder, as demo/holdout.json."""
    return Path(gallery).resolve().parent / HOLDOUT_FILE


def write_holdout(records: Sequence[ImageRecord], n: int, gallery: str | os.PathLike
                  ) -> tuple[list[ImageRecord], list[ImageRecord], Path]:
    """Leave `n` records, spread evenly over the sorted list, out of a gallery and list their files in holdout.json
    beside it (paths relative to that file); returns (kept, held out, the file)."""
    if not 0 < n < len(records):
        raise ValueError(f"--holdout must be between 1 and {len(records) - 1} for {len(records)} items; got {n}")
    picked = set(np.linspace(0, len(records) - 1, n).round().astype(int).tolist())
    held = [r for i, r in enumerate(records) if i in picked]
    path = holdout_path(gallery)
    path.parent.mkdir(parents=True, exist_ok=True)
    files = [os.path.relpath(r.path.resolve(), path.parent) for r in held]
    path.write_text(json.dumps({"gallery": Path(gallery).resolve().name, "held_out": files}, indent=2) + "\n")
    return [r for i, r in enumerate(records) if i not in picked], held, path


def holdout_examples(gallery: str | os.PathLike, limit: int = 6) -> list[Path]:
    """Up to `limit` held-out photos of a gallery that exist on disk (holdout.json beside it, written for that
    gallery); [] when there is none."""
    path = holdout_path(gallery)
    try:
        listed = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if listed.get("gallery") not in (None, Path(gallery).resolve().name):
        return []
    files = [(path.parent / f).resolve() for f in listed.get("held_out", [])]
    return [f for f in files if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS][:limit]
