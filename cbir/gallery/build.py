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

from cbir.embed.colour import ColourSpec
from cbir.gallery.dataset import Embedder, Gallery, ImageRecord, embed_records, pack_gallery
from cbir.embed.spec import EmbeddingSpec
from cbir.gallery.labels import parse_label

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


def dataset_chunks(source: str | os.PathLike, chunk: int, scratch: Path) -> RecordChunks:
    """Chunks of a `datasets` source streamed row by row (a Hub id through `load_dataset(streaming=True)`,
    a local `save_to_disk` folder as an iterable dataset): each chunk's images are written to `scratch`
    as files of a `colour_type` folder, so the folder pipeline embeds them. Needs an `image` column and
    a `label` column (`colour_type`, a string or a ClassLabel)."""
    from cbir.hub import is_local

    if is_local(source):
        ds = datasets.load_from_disk(str(source)).to_iterable_dataset()
    else:
        ds = datasets.load_dataset(str(source), split="train", streaming=True)
    missing = {"image", "label"} - set(ds.column_names or ())
    if missing:
        raise ValueError(f"dataset {source} lacks columns {sorted(missing)} (needs image and a colour_type label)")
    names = getattr(ds.features.get("label"), "names", None) if ds.features else None
    ds = ds.cast_column("image", datasets.Image(decode=False))

    def chunks(done_below: int) -> Iterator[tuple[int, Optional[list[ImageRecord]]]]:
        rows = iter(ds.skip(done_below * chunk))
        for c in range(done_below):
            yield c, None
        c = done_below
        while True:
            batch = [row for _, row in zip(range(chunk), rows)]
            if not batch:
                return
            folder = scratch / f"images-{c:05d}"
            shutil.rmtree(folder, ignore_errors=True)
            recs = []
            for i, row in enumerate(batch):
                label = parse_label(names[row["label"]] if names else str(row["label"]))
                data = row["image"]["bytes"] or Path(row["image"]["path"]).read_bytes()
                name = f"{c * chunk + i:08d}{Path(row['image'].get('path') or '.jpg').suffix or '.jpg'}"
                path = folder / label.name / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                recs.append(ImageRecord(path, f"{label.name}/{name}", label, hashlib.sha1(data).hexdigest()))
            yield c, recs
            shutil.rmtree(folder, ignore_errors=True)
            c += 1

    return chunks


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
) -> tuple[Gallery, dict[str, str]]:
    """Embed `records` (a folder scan, or `dataset_chunks(...)`) chunk by chunk into shards under
    `partial_dir(out)` and, when `store` (a cbir.stores.GalleryStore) is given, upsert each chunk's
    rows there with the gallery row as id.

    Resumes: a shard already on disk is not embedded again and store rows already present are not
    rewritten. Each shard carries the colour descriptors of `colour` (None: none), saved with its recipe.
    Returns the saved gallery and {relpath: reason} for unreadable files.
    """
    tmp = partial_dir(out)
    tmp.mkdir(parents=True, exist_ok=True)
    meta_path = tmp / "build.json"
    n_records = len(records) if isinstance(records, Sequence) else None
    meta = {"n_records": n_records, "chunk": int(chunk), "model": embedder.spec.to_dict(), "dtype": dtype,
            "colour": None if colour is None else colour.to_dict()}
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
        part, errs = pack_gallery(recs, embedded, embedder.spec, dtype, colour, blobs)
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
