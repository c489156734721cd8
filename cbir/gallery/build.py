"""Streaming, resumable gallery builds from an image folder or a streamed `datasets` source: embed a
chunk, write it as a dataset shard (and to a vector store), move on. Memory holds one chunk, never the whole gallery; a rerun after a crash skips the
shards already written and the store rows already present, then joins the shards into the gallery.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import datasets
import numpy as np

from cbir.embed.colour import COLOUR_COLUMN, ColourSpec
from cbir.gallery.labels import TASKS
from cbir.gallery.dataset import (ID_COLUMN, METADATA_COLUMN, PROBABILITY_SUFFIX, Embedder, Gallery, ImageRecord, embed_records,
                                  pack_gallery, record_layout)
from cbir.embed.spec import EmbeddingSpec
from cbir.gallery.sources import IMAGE_COLUMN, LABEL_FIELDS, row_label

# A source's columns that are not the item's metadata: its image and labels, and a gallery's own columns (a saved
# gallery streamed as a source keeps its labels, not its embeddings).
NOT_METADATA = frozenset({IMAGE_COLUMN, *LABEL_FIELDS, "sha1", "path", "embedding", COLOUR_COLUMN, METADATA_COLUMN,
                          *(t + PROBABILITY_SUFFIX for t in TASKS)})
CHUNK = 512  # images per shard: a crash loses at most this much embedding work
PARTIAL_SUFFIX = ".partial"


def partial_dir(out: str | os.PathLike) -> Path:
    """Where shards of an unfinished build live (beside the output, removed once it is complete)."""
    out = Path(out)
    return out.parent / (out.name + PARTIAL_SUFFIX)


RecordChunks = Callable[[int], Iterator[tuple[int, Optional[list[ImageRecord]]]]]


def folder_chunks(records: Sequence[ImageRecord], chunk: int) -> RecordChunks:
    """Chunks of an image-folder scan: chunk c is records[c * chunk : (c + 1) * chunk]."""

    def chunks(done_below: int) -> Iterator[tuple[int, Optional[list[ImageRecord]]]]:
        for c, s in enumerate(range(0, len(records), chunk)):
            yield c, None if c < done_below else list(records[s : s + chunk])

    return chunks


class StreamedChunks:
    """Chunks of a `datasets` source streamed row by row (a Hub id through `load_dataset(streaming=True)`, a local
    `save_to_disk` folder as an iterable dataset): each chunk's images are written to `scratch` as files, so the
    folder pipeline embeds them. Needs an `image` column; `id`, `label` (a string or a ClassLabel), `type` and
    `colour` are read as in a manifest (cbir.gallery.sources) and every other column is the item's metadata."""

    def __init__(self, source: str | os.PathLike, chunk: int, scratch: Path) -> None:
        from cbir.hub import is_local

        if is_local(source):
            ds = datasets.load_from_disk(str(source)).to_iterable_dataset()
        else:
            ds = datasets.load_dataset(str(source), split="train", streaming=True)
        columns = list(ds.column_names or ())
        if IMAGE_COLUMN not in columns:
            raise ValueError(f"dataset {source} has no {IMAGE_COLUMN!r} column (its columns: {', '.join(columns)})")
        self.names = getattr(ds.features.get("label"), "names", None) if ds.features else None
        self.ds = ds.cast_column(IMAGE_COLUMN, datasets.Image(decode=False))
        self.source, self.chunk, self.scratch = source, int(chunk), scratch
        extra = [c for c in columns if c not in NOT_METADATA]
        self.layout = frozenset({t for t in ("type", "colour") if t in columns or "label" in columns}
                                | ({ID_COLUMN} if "id" in columns else set())
                                | ({METADATA_COLUMN} if extra else set()))
        self.summary = (f"streaming dataset {source}: labels from {', '.join(c for c in ('label', 'type', 'colour') if c in columns) or 'none'}, "
                        f"metadata {', '.join(extra) or 'none'}")

    def _record(self, folder: Path, n: int, row: dict[str, Any]) -> ImageRecord:
        data = row[IMAGE_COLUMN]["bytes"] or Path(row[IMAGE_COLUMN]["path"]).read_bytes()
        if self.names is not None and row.get("label") is not None:
            row = {**row, "label": self.names[row["label"]]}
        label = row_label({k: row.get(k) for k in ("label", "type", "colour")})
        name = f"{n:08d}{Path(row[IMAGE_COLUMN].get('path') or '.jpg').suffix or '.jpg'}"
        relpath = f"{label.name}/{name}" if label.name else name
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        meta = {k: v for k, v in row.items() if k not in NOT_METADATA}
        item_id = None if row.get("id") in (None, "") else str(row["id"])
        return ImageRecord(path, relpath, label, hashlib.sha1(data).hexdigest(), id=item_id, metadata=meta or None)

    def __call__(self, done_below: int) -> Iterator[tuple[int, Optional[list[ImageRecord]]]]:
        rows = iter(self.ds.skip(done_below * self.chunk))
        for c in range(done_below):
            yield c, None
        c = done_below
        while True:
            batch = [row for _, row in zip(range(self.chunk), rows)]
            if not batch:
                return
            folder = self.scratch / f"images-{c:05d}"
            shutil.rmtree(folder, ignore_errors=True)
            yield c, [self._record(folder, c * self.chunk + i, row) for i, row in enumerate(batch)]
            shutil.rmtree(folder, ignore_errors=True)
            c += 1


def dataset_chunks(source: str | os.PathLike, chunk: int, scratch: Path) -> StreamedChunks:
    """The chunks of a streamed `datasets` source (StreamedChunks)."""
    return StreamedChunks(source, chunk, scratch)


def build_gallery_streaming(
    records: Sequence[ImageRecord] | RecordChunks,
    embedder: Embedder,
    out: str | os.PathLike,
    store: Any = None,
    chunk: int = CHUNK,
    batch_size: int = 32,
    num_workers: int = 0,
    dtype: str = "float32",
    progress: Optional[Callable] = None,
    log: Callable[[str], None] = print,
    colour: Optional[ColourSpec] = ColourSpec(),
    annotate: Optional[Callable[[Gallery], Gallery]] = None,
) -> tuple[Gallery, dict[str, str]]:
    """Embed `records` (a folder scan, or `dataset_chunks(...)`) chunk by chunk into shards under
    `partial_dir(out)` and, when `store` (a cbir.stores.GalleryStore) is given, upsert each chunk's
    rows there with the gallery row as id. `annotate` adds columns to each shard before it is written (the
    predicted type and colour: cbir.similarity.predicted; its `tag` is part of the build's settings).

    Resumes: a shard already on disk is not embedded again and store rows already present are not
    rewritten. Each shard carries the colour descriptors of `colour` (None: none), saved with its recipe.
    Returns the saved gallery and {relpath: reason} for unreadable files.
    """
    tmp = partial_dir(out)
    tmp.mkdir(parents=True, exist_ok=True)
    meta_path = tmp / "build.json"
    n_records = len(records) if isinstance(records, Sequence) else None
    layout = record_layout(records) if isinstance(records, Sequence) else getattr(records, "layout", None)
    meta = {"n_records": n_records, "chunk": int(chunk), "model": embedder.spec.to_dict(), "dtype": dtype,
            "colour": None if colour is None else colour.to_dict(),
            "layout": None if layout is None else sorted(layout), "annotate": getattr(annotate, "tag", None)}
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        raise ValueError(f"{tmp} holds an unfinished build with other settings; delete it to start over")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    stored = set(store.stored_ids().tolist()) if store is not None else set()
    chunks = folder_chunks(records, chunk) if isinstance(records, Sequence) else records
    done_below = 0
    while (tmp / f"shard-{done_below:05d}" / "done").exists():
        done_below += 1
    errors: dict[str, str] = {}
    shards: list[datasets.Dataset] = []
    offset = 0
    resumed = 0

    def finish(c: int, recs: Optional[list[ImageRecord]], embedded: Any, blobs: Optional[list[bytes]]
               ) -> tuple[datasets.Dataset, dict[str, str]]:
        """Write chunk c's shard (unless it is on disk already) and return it memory-mapped, with its skipped files."""
        shard_dir = tmp / f"shard-{c:05d}"
        if recs is None:
            return datasets.load_from_disk(str(shard_dir)), json.loads((shard_dir / "skipped.json").read_text())
        part, errs = pack_gallery(recs, embedded, embedder.spec, dtype, colour, blobs, layout)
        if annotate is not None:
            part = annotate(part)
        part.dataset.save_to_disk(str(shard_dir))
        (shard_dir / "skipped.json").write_text(json.dumps(errs) + "\n")
        (shard_dir / "done").write_text("")
        return datasets.load_from_disk(str(shard_dir)), errs  # memory-mapped: the chunk's arrays can go

    def collect(written: Future) -> None:
        """Take a written shard in order: upsert its rows missing from the store, then append it."""
        nonlocal offset
        ds, errs = written.result()  # a failed write stops the build here (its chunk is redone on resume)
        ids = np.arange(offset, offset + len(ds))
        todo = np.array([i for i in ids if int(i) not in stored], dtype=np.int64)
        if store is not None and len(todo):
            sub = Gallery(ds.select((todo - offset).tolist()), embedder.spec, colour)
            labels = {"label": sub.labels, "colour": sub.colours, "type": sub.types}
            store.add(todo, sub.embeddings, labels, sub.descriptors)
        errors.update(errs)
        shards.append(ds)
        offset += len(ds)

    # A chunk's shard is packed and written in a writer thread while the next chunk embeds: the forward pass
    # never waits for Arrow. One writer, so shards and store rows land in order; at most one chunk is pending.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as writer:
        pending: Optional[Future] = None
        try:
            for c, recs in progress(chunks(done_below)) if progress else chunks(done_below):
                embedded = blobs = None
                if recs is not None:
                    embedded = embed_records(recs, embedder, batch_size, num_workers, False, colour)
                    kept = set(embedded.kept.tolist())
                    blobs = [r.path.read_bytes() if i in kept else b"" for i, r in enumerate(recs)]
                resumed += recs is None  # (streamed sources delete a chunk's files once the next is asked for)
                if pending is not None:
                    written, pending = pending, None
                    collect(written)
                pending = writer.submit(finish, c, recs, embedded, blobs)
        except BaseException:
            if pending is not None and pending.exception() is None:  # a crash keeps the last written shard's rows
                collect(pending)
            raise
        if pending is not None:
            collect(pending)
    if resumed:
        log(f"resumed: {resumed} chunks were already embedded")
    if store is not None:
        store.flush()
    spec = EmbeddingSpec.from_dict({**embedder.spec.to_dict(), "dtype": dtype})
    Gallery(datasets.concatenate_datasets(shards), spec, colour).save(out)
    shutil.rmtree(tmp)
    return Gallery.load(out), errors
