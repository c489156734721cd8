"""Streaming, resumable gallery builds: embed a chunk, write it as a dataset shard (and to a vector
store), move on. Memory holds one chunk, never the whole gallery; a rerun after a crash skips the
shards already written and the store rows already present, then joins the shards into the gallery.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import datasets
import numpy as np

from .data import Embedder, Gallery, ImageRecord, build_gallery
from .features import EmbeddingSpec

CHUNK = 512  # images per shard: a crash loses at most this much embedding work
PARTIAL_SUFFIX = ".partial"


def partial_dir(out: str | os.PathLike) -> Path:
    """Where shards of an unfinished build live (beside the output, removed once it is complete)."""
    out = Path(out)
    return out.parent / (out.name + PARTIAL_SUFFIX)


def build_gallery_streaming(
    records: Sequence[ImageRecord],
    embedder: Embedder,
    out: str | os.PathLike,
    store: Any = None,
    chunk: int = CHUNK,
    batch_size: int = 32,
    num_workers: int = 0,
    dtype: str = "float32",
    progress: Optional[Callable] = None,
    log: Callable[[str], None] = print,
) -> tuple[Gallery, dict[str, str]]:
    """Embed `records` chunk by chunk into shards under `partial_dir(out)` and, when `store` (a
    cbir.stores.GalleryStore) is given, upsert each chunk's rows there with the gallery row as id.

    Resumes: a shard already on disk is not embedded again and store rows already present are not
    rewritten. Returns the saved gallery and {relpath: reason} for unreadable files.
    """
    tmp = partial_dir(out)
    tmp.mkdir(parents=True, exist_ok=True)
    meta_path = tmp / "build.json"
    meta = {"n_records": len(records), "chunk": int(chunk), "model": embedder.spec.to_dict(), "dtype": dtype}
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        raise ValueError(f"{tmp} holds an unfinished build with other settings; delete it to start over")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    stored = set(store.stored_ids().tolist()) if store is not None else set()
    starts = list(range(0, len(records), chunk))
    errors: dict[str, str] = {}
    shards: list[datasets.Dataset] = []
    offset = 0
    resumed = 0
    for c, s in enumerate(progress(starts) if progress else starts):
        shard_dir = tmp / f"shard-{c:05d}"
        if (shard_dir / "done").exists():
            ds = datasets.load_from_disk(str(shard_dir))
            errors.update(json.loads((shard_dir / "skipped.json").read_text()))
            resumed += 1
        else:
            part, errs = build_gallery(records[s : s + chunk], embedder, batch_size, num_workers, dtype, progress=False)
            part.dataset.save_to_disk(str(shard_dir))
            (shard_dir / "skipped.json").write_text(json.dumps(errs) + "\n")
            (shard_dir / "done").write_text("")
            errors.update(errs)
            ds = datasets.load_from_disk(str(shard_dir))  # memory-mapped: the chunk's arrays can go
        ids = np.arange(offset, offset + len(ds))
        todo = np.array([i for i in ids if int(i) not in stored], dtype=np.int64)
        if store is not None and len(todo):
            sub = Gallery(ds.select((todo - offset).tolist()), embedder.spec)
            labels = {"label": sub.labels, "colour": sub.colours, "type": sub.types}
            store.add(todo, sub.embeddings, labels)
        shards.append(ds)
        offset += len(ds)
    if resumed:
        log(f"resumed: {resumed} of {len(starts)} chunks were already embedded")
    if store is not None:
        store.flush()
    spec = EmbeddingSpec.from_dict({**embedder.spec.to_dict(), "dtype": dtype})
    Gallery(datasets.concatenate_datasets(shards), spec).save(out)
    shutil.rmtree(tmp)
    return Gallery.load(out), errors
