"""The gallery: labelled images plus their embeddings, as a Hugging Face `datasets` dataset."""

from __future__ import annotations

import functools
import io
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Collection, Mapping, Optional, Protocol, Sequence

import datasets
import numpy as np
from PIL import Image

from cbir.embed.colour import COLOUR_COLUMN, COLOUR_SPEC_FILE, ColourSpec, colour_descriptor, colour_descriptors
from cbir.embed.backbones import file_digest
from cbir.embed.spec import EmbeddedFiles, EmbeddingSpec
from cbir.hub import push_dataset
from cbir.images import load_image
from cbir.gallery.labels import TASKS, Label, LabelError, parse_label

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
SPEC_FILE = "embedding_spec.json"
from cbir.gallery.journal import ID_COLUMN  # noqa: E402 (the id column, defined beside the edits that keep ids)
METADATA_COLUMN = "metadata"  # the item's manifest columns as one JSON object (any columns, any shard)
PROBABILITY_SUFFIX = "_probability"  # `type_probability`: the predicted value's probability; None where labelled
STORAGE_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class ImageRecord:
    """One image file of a catalogue, with its content hash for de-duplication; `id` and `metadata` (the manifest's
    other columns) when the source gives them."""

    path: Path
    relpath: str
    label: Label
    sha1: str
    id: Optional[str] = None
    metadata: Optional[Mapping[str, Any]] = None


class Embedder(Protocol):
    spec: EmbeddingSpec

    def embed_files(
        self, sources: Sequence[Any], batch_size: int = ..., num_workers: int = ..., progress: bool = ...,
        describe: Any = ...,
    ) -> EmbeddedFiles: ...


def derive_ids(paths: Sequence[str]) -> list[str]:
    """Ids from file paths: the name without extension; a name that repeats keeps its folder ("red_shoes/9bfb"),
    and one that still repeats gets "#2", "#3"... in row order (deterministic, so a rebuild gives the same ids)."""
    stems = [Path(p).stem for p in paths]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    ids = [s if counts[s] == 1 else str(Path(p).with_suffix("")) for s, p in zip(stems, paths)]
    return unique_ids(ids)


def unique_ids(ids: Sequence[str], taken: Collection[str] = ()) -> list[str]:
    """`ids` made unique among themselves and against `taken` by appending "#2", "#3", ... to repeats."""
    seen, out = set(taken), []
    for i in ids:
        new, n = i, 1
        while new in seen:
            n += 1
            new = f"{i}#{n}"
        seen.add(new)
        out.append(new)
    return out


def file_sha1(path: str | os.PathLike) -> str:
    return file_digest(path, "sha1")


def scan_image_folder(root: str | os.PathLike) -> list[ImageRecord]:
    """List the images of `root/<class>/*`, sorted; the folder name is the label (cbir.gallery.labels.parse_label)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    records: list[ImageRecord] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = parse_label(folder.name)
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith("."):
                records.append(ImageRecord(f, f"{folder.name}/{f.name}", label, file_sha1(f)))
    if not records:
        raise LabelError(f"no images found in class folders under {root} (expected {root}/<class>/*.jpg, e.g. black_dress/ or shoes/)")
    return records


def record_layout(records: Sequence[ImageRecord]) -> frozenset[str]:
    """The optional columns records fill: the tasks their labels give, `id`, `metadata`; every shard of a build
    carries the same ones (decided once, over every record), so the shards join."""
    tasks = {t for t in TASKS if any(r.label.attribute(t) for r in records)}
    return frozenset(tasks | ({ID_COLUMN} if any(r.id for r in records) else set())
                     | ({METADATA_COLUMN} if any(r.metadata for r in records) else set()))


def gallery_features(dim: int, dtype: str = "float32", tasks: Collection[str] = TASKS) -> datasets.Features:
    """The gallery's schema: image bytes, labels (a column per task the labels give), hash, path, embedding, and the
    `id` / `metadata` columns when `tasks` names them."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"embedding storage dtype must be one of {STORAGE_DTYPES}, not {dtype!r}")
    columns = {"image": datasets.Image(), "label": datasets.Value("string")}
    columns.update({task: datasets.Value("string") for task in ("colour", "type") if task in tasks})
    columns.update({c: datasets.Value("string") for c in (ID_COLUMN, METADATA_COLUMN) if c in tasks})
    columns.update(
        {
            "sha1": datasets.Value("string"),
            "path": datasets.Value("string"),
            "embedding": datasets.List(datasets.Value(dtype), length=dim),
        }
    )
    return datasets.Features(columns)


class GalleryMismatchError(ValueError):
    """A gallery's stored embeddings do not match its embedding spec (width or dtype)."""


def _mismatch(stored: str, spec: str) -> str:
    return (
        f"the gallery's embeddings are {stored} but its {SPEC_FILE} says {spec}: the dataset and its spec do not "
        "belong together; rebuild the gallery with scripts/build_index.py (or restore the matching spec)"
    )


def check_embedding_column(feature: Any, spec: EmbeddingSpec) -> None:
    """Refuse an embedding column whose width or storage dtype differs from the spec (GalleryMismatchError)."""
    inner = getattr(feature, "feature", None)
    dtype = getattr(inner, "dtype", None)
    length = getattr(feature, "length", -1)
    if dtype is None:
        raise GalleryMismatchError(f"the gallery's embedding column is {feature}, not a list of numbers")
    if dtype not in STORAGE_DTYPES:
        raise GalleryMismatchError(
            f"the gallery's embeddings are stored as {dtype}; only {' and '.join(STORAGE_DTYPES)} are supported: "
            "rebuild the gallery with scripts/build_index.py --dtype float32"
        )
    problems = []
    if length not in (-1, None) and length != spec.dim:
        problems.append((f"{length}-d", f"{spec.dim}-d"))
    if dtype != spec.dtype:
        problems.append((dtype, spec.dtype))
    if problems:
        raise GalleryMismatchError(_mismatch(", ".join(p[0] for p in problems), ", ".join(p[1] for p in problems)))


class Gallery:
    """A gallery dataset with its EmbeddingSpec; label arrays and float32 embeddings are read once.

    `colour` and `type` columns are optional (a gallery of `shoes/`, `hat/` folders has no colour); a missing
    column or value reads as None, and `tasks` lists the tasks every image has a value for.
    """

    def __init__(
        self, dataset: datasets.Dataset, spec: EmbeddingSpec, colour_spec: Optional[ColourSpec] = None
    ) -> None:
        missing = {"image", "label", "embedding"} - set(dataset.column_names)
        if missing:
            raise ValueError(f"gallery dataset lacks columns {sorted(missing)}")
        check_embedding_column(dataset.features["embedding"], spec)
        if colour_spec is not None and COLOUR_COLUMN not in dataset.column_names:
            raise ValueError(f"a colour spec was given but the gallery has no {COLOUR_COLUMN!r} column")
        self.dataset = dataset
        self.spec = spec
        self.colour_spec = colour_spec  # None: no descriptors (older galleries; a column without its recipe is unused)

    def __len__(self) -> int:
        return len(self.dataset)

    @cached_property
    def embeddings(self) -> np.ndarray:
        """(N, dim) float32, whatever the storage dtype: scoring always runs in float32."""
        table = self.dataset.with_format("arrow", columns=["embedding"])[:]
        flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        vecs = np.asarray(flat, dtype=np.float32).reshape(len(self), -1)
        if vecs.shape[1] != self.spec.dim:
            raise GalleryMismatchError(_mismatch(f"{vecs.shape[1]}-d", f"{self.spec.dim}-d"))
        return vecs

    @cached_property
    def descriptors(self) -> Optional[np.ndarray]:
        """(N, colour_spec.dim) float32 colour descriptors, or None when the gallery has none."""
        if self.colour_spec is None:
            return None
        table = self.dataset.with_format("arrow", columns=[COLOUR_COLUMN])[:]
        flat = table.column(COLOUR_COLUMN).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return np.asarray(flat, dtype=np.float32).reshape(len(self), self.colour_spec.dim)

    def with_colour(self, colour_spec: Optional[ColourSpec] = None, progress: bool = True) -> "Gallery":
        """A copy of this gallery with colour descriptors computed from its stored images."""
        colour_spec = colour_spec or ColourSpec()
        images = (self.image_bytes(i)[0] for i in range(len(self)))
        desc = colour_descriptors(images, colour_spec, progress=progress)
        ds = self.dataset.remove_columns([c for c in (COLOUR_COLUMN,) if c in self.dataset.column_names])
        column = datasets.List(datasets.Value("float32"), length=colour_spec.dim)
        ds = ds.add_column(COLOUR_COLUMN, list(desc), feature=column)
        return Gallery(ds, self.spec, colour_spec)

    def _column(self, name: str) -> np.ndarray:
        if name not in self.dataset.column_names:
            return np.full(len(self), None, dtype=object)
        return np.asarray(self.dataset.with_format("arrow", columns=[name])[:].column(name).to_pylist(), dtype=object)

    @cached_property
    def labels(self) -> np.ndarray:
        return self._column("label")

    @cached_property
    def colours(self) -> np.ndarray:
        return self._column("colour")

    @cached_property
    def types(self) -> np.ndarray:
        return self._column("type")

    @cached_property
    def ids(self) -> np.ndarray:
        """Stable item ids: the `id` column when the gallery has one, else each file's name without extension."""
        if ID_COLUMN in self.dataset.column_names:
            return self._column(ID_COLUMN).astype(str).astype(object)
        paths = self._column("path") if "path" in self.dataset.column_names else self._image_names()
        return np.asarray(derive_ids([str(p or i) for i, p in enumerate(paths)]), dtype=object)

    def _image_names(self) -> np.ndarray:
        stored = self.dataset.with_format("arrow", columns=["image"])[:].column("image").to_pylist()
        return np.asarray([(s or {}).get("path") for s in stored], dtype=object)

    @cached_property
    def hashes(self) -> np.ndarray:
        if "sha1" in self.dataset.column_names:
            return self._column("sha1")
        return np.arange(len(self)).astype(str).astype(object)

    @cached_property
    def _metadata_json(self) -> np.ndarray:
        return self._column(METADATA_COLUMN)

    def metadata(self, i: int) -> dict[str, Any]:
        """Row i's manifest columns ({} when it has none)."""
        raw = self._metadata_json[int(i)]
        return json.loads(raw) if raw else {}

    @cached_property
    def probabilities(self) -> dict[str, np.ndarray]:
        """{task: (N,) probability of the predicted value, NaN where the value is a label} for the predicted tasks."""
        cols = self.dataset.column_names
        return {t: np.asarray(self._column(t + PROBABILITY_SUFFIX), dtype=np.float64) for t in TASKS
                if t + PROBABILITY_SUFFIX in cols}

    def predicted(self, i: int) -> dict[str, float]:
        """{task: probability} of row i's predicted values; tasks it has a label for are not in it."""
        return {t: round(float(p[int(i)]), 4) for t, p in self.probabilities.items() if np.isfinite(p[int(i)])}

    def attribute(self, task: str) -> np.ndarray:
        """Per-image value of a task: garment type or colour (None where the label does not give it)."""
        return {"type": self.types, "colour": self.colours}[task]

    @cached_property
    def tasks(self) -> tuple[str, ...]:
        """The tasks (of TASKS) whose value every image has: what pairs and retrieval can be judged on."""
        return tuple(t for t in TASKS if len(self) and all(v is not None and v != "" for v in self.attribute(t)))

    def require_tasks(self, tasks: Sequence[str]) -> None:
        """Raise a clear ValueError when a task's labels are missing from this gallery."""
        missing = [t for t in tasks if t not in self.tasks]
        if missing:
            raise ValueError(
                f"the gallery has no {' / '.join(missing)} label for every image (it has: "
                f"{', '.join(self.tasks) or 'none'}); name class folders colour_type (e.g. black_dress) to get both"
            )

    def image(self, i: int) -> Image.Image:
        """The i-th gallery image, decoded to RGB."""
        return load_image(self.dataset[int(i)]["image"])

    def image_bytes(self, i: int, suffixes: Optional[Collection[str]] = None) -> tuple[bytes, str]:
        """The i-th image as stored (original file bytes) and its file suffix.

        Re-encoded as PNG when only pixels are stored, or when the stored suffix is not in `suffixes`.
        """
        stored = self.dataset.with_format("arrow", columns=["image"])[int(i)].column("image")[0].as_py() or {}
        suffix = Path(stored.get("path") or "").suffix.lower()
        if stored.get("bytes") and (suffixes is None or suffix in suffixes):
            return stored["bytes"], suffix
        buf = io.BytesIO()
        self.image(i).save(buf, format="PNG")
        return buf.getvalue(), ".png"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the dataset with `save_to_disk` and the spec beside it."""
        path = Path(path)
        self.dataset.save_to_disk(str(path))
        self.spec.save(path / SPEC_FILE)
        if self.colour_spec is not None:
            self.colour_spec.save(path / COLOUR_SPEC_FILE)
        return path

    @classmethod
    def load(cls, source: str | os.PathLike, revision: Optional[str] = None) -> "Gallery":
        """Load from a local `save_to_disk` folder or a Hub dataset id (`load_dataset`, pinned to `revision`)."""
        from cbir.hub import check_revision, fetch_file, hub_load, is_local

        check_revision(source, revision)
        if is_local(source):
            ds = datasets.load_from_disk(str(source))
        else:
            ds = hub_load(
                lambda: datasets.load_dataset(str(source), split="train", revision=revision),
                str(source), "dataset", revision,
            )
        spec = EmbeddingSpec.load(fetch_file(source, SPEC_FILE, repo_type="dataset", revision=revision))
        colour_spec = None
        if COLOUR_COLUMN in ds.column_names:  # older galleries have no colour descriptor
            try:
                colour_spec = ColourSpec.load(
                    fetch_file(source, COLOUR_SPEC_FILE, repo_type="dataset", revision=revision)
                )
            except FileNotFoundError:  # local or Hub (HubNotFoundError): a column without its recipe is unused
                colour_spec = None
        gallery = cls(ds, spec, colour_spec)
        if is_local(source):  # live edits not yet compacted (cbir.gallery.edits), replayed in order
            from cbir.gallery.journal import read_journal, replay

            if read_journal(source):
                gallery = cls(replay(ds, source, gallery.ids), spec, colour_spec)
        return gallery


def push_gallery(gallery_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Push a saved gallery (dataset + embedding spec, + colour spec beside a descriptor column) to a Hub dataset repo."""
    extra = tuple(n for n in (SPEC_FILE, COLOUR_SPEC_FILE) if n == SPEC_FILE or (Path(gallery_dir) / n).is_file())
    return push_dataset(gallery_dir, repo_id, extra, private=private, token=token)


def build_gallery(
    records: Sequence[ImageRecord],
    embedder: Embedder,
    batch_size: int = 32,
    num_workers: int = 0,
    dtype: str = "float32",
    progress: bool = True,
    colour: Optional[ColourSpec] = ColourSpec(),
) -> tuple[Gallery, dict[str, str]]:
    """Embed every record and pack images, labels, embeddings and colour descriptors into one dataset.

    `colour=None` leaves the colour descriptor out (a gallery like those built before it existed).
    Unreadable images are left out and returned as {relpath: reason}, so nothing is dropped silently.
    """
    embedded = embed_records(records, embedder, batch_size, num_workers, progress, colour)
    return pack_gallery(records, embedded, embedder.spec, dtype, colour)


def embed_records(
    records: Sequence[ImageRecord],
    embedder: Embedder,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = True,
    colour: Optional[ColourSpec] = ColourSpec(),
) -> EmbeddedFiles:
    """The embedding half of build_gallery: vectors (+ colour descriptors) of the readable records."""
    describe = None if colour is None else functools.partial(colour_descriptor, spec=colour)  # same decode
    return embedder.embed_files(
        [r.path for r in records], batch_size=batch_size, num_workers=num_workers, progress=progress,
        describe=describe,
    )


def pack_gallery(
    records: Sequence[ImageRecord],
    embedded: EmbeddedFiles,
    spec: EmbeddingSpec,
    dtype: str = "float32",
    colour: Optional[ColourSpec] = ColourSpec(),
    blobs: Optional[Sequence[bytes]] = None,
    layout: Optional[Collection[str]] = None,
) -> tuple[Gallery, dict[str, str]]:
    """The packing half of build_gallery: images, labels, embeddings and descriptors as one dataset.

    `blobs`: the records' file bytes, read earlier (the files may be gone by now); None reads them here.
    `layout`: the optional columns (record_layout; None: those these records fill)."""
    vecs, kept, errors, described = embedded
    keep = [records[i] for i in kept]
    data_of = (lambda i: blobs[i]) if blobs is not None else (lambda i: records[i].path.read_bytes())  # noqa: E731
    tasks = record_layout(records) if layout is None else frozenset(layout)  # a column only if some label gives it
    data = {
        "image": [{"bytes": data_of(i), "path": records[i].path.name} for i in kept],
        "label": [r.label.name for r in keep],
        **{t: [r.label.attribute(t) for r in keep] for t in ("colour", "type") if t in tasks},
        **({ID_COLUMN: [r.id for r in keep]} if ID_COLUMN in tasks else {}),
        **({METADATA_COLUMN: [json.dumps(dict(r.metadata or {}), ensure_ascii=False, default=str) for r in keep]}
           if METADATA_COLUMN in tasks else {}),
        "sha1": [r.sha1 for r in keep],
        "path": [r.relpath for r in keep],
        "embedding": vecs.astype(dtype),
    }
    spec = spec if dtype == spec.dtype else _with_dtype(spec, dtype)
    features = gallery_features(spec.dim, dtype, tasks)
    if colour is not None:
        data[COLOUR_COLUMN] = described if described is not None else np.empty((0, colour.dim), np.float32)
        features[COLOUR_COLUMN] = datasets.List(datasets.Value("float32"), length=colour.dim)
    ds = datasets.Dataset.from_dict(data, features=features)
    return Gallery(ds, spec, colour), {records[i].relpath: msg for i, msg in errors.items()}


def _with_dtype(spec: EmbeddingSpec, dtype: str) -> EmbeddingSpec:
    d = spec.to_dict()
    d["dtype"] = dtype
    return EmbeddingSpec.from_dict(d)

