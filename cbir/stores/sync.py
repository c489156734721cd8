"""A store in step with its gallery. A store's ids are gallery row numbers, so an edit (add appends, remove
moves later rows up) changes the rows from its first changed row on: those leave every space and are written
again. At start-up the first row that differs is found (a process killed between writing the gallery and
the store), so a restart finishes what a killed edit began."""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional, Sequence

import numpy as np

from cbir.similarity.classifiers import ClassifierSet
from cbir.stores.gallery import GalleryStore, fill_from_gallery, gallery_columns
from cbir.stores.methods import RAW_SPACE, SPACES
from cbir.stores.uri import StoreURI, describe

log = logging.getLogger(__name__)


def _row_matches(store: GalleryStore, name: str, gallery: Any, held: set[int], i: int) -> bool:
    """Whether space `name` holds gallery row `i` as the gallery (and the loaded classifiers) would write it."""
    if i not in held:
        return False
    d = None if gallery.descriptors is None else np.asarray(gallery.descriptors[i : i + 1], np.float32)
    want = SPACES[name].image_vectors(np.asarray(gallery.embeddings[i : i + 1], np.float32), store.classifiers, d)
    return bool(np.allclose(store.spaces[name].get([i]), want, rtol=1e-4, atol=1e-4))


def matching_prefix(store: GalleryStore, name: str, gallery: Any, held: Optional[set[int]] = None) -> int:
    """How many leading gallery rows space `name` holds as written from `gallery` (`held`: its ids, when the
    caller has them): a binary search, since an edit shifts every row after its first changed one and a build
    writes rows in order (matches are a prefix)."""
    held = {int(i) for i in store.spaces[name].ids()} if held is None else held
    lo, hi = 0, min(len(gallery), len(held))
    if hi and _row_matches(store, name, gallery, held, hi - 1):  # the usual restart: all in step, one read
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if _row_matches(store, name, gallery, held, mid):
            lo = mid + 1
        else:
            hi = mid
    return lo


def drop_from(store: GalleryStore, first: dict[str, int], held: dict[str, np.ndarray], edit: bool = False) -> int:
    """Delete from each space its `held` ids >= `first[name]` (the rows to write again); returns how many went."""
    gone = 0
    for name, space in store.spaces.items():
        stale = held[name][held[name] >= first[name]]
        if len(stale):
            space.delete(stale)
            gone += len(stale)
    if gone:
        store.flush(edit)
    return gone


def fill(store: GalleryStore, gallery: Any, progress: Optional[Callable] = None, edit: bool = False,
         held: Optional[dict[str, np.ndarray]] = None) -> int:
    """Write the gallery rows each space lacks (cbir.stores.gallery.fill_from_gallery) for a Gallery (`held`: each
    space's ids, when the caller knows them: no second id scan)."""
    return fill_from_gallery(store, gallery.embeddings, gallery_columns(gallery), progress=progress,
                             descriptors=gallery.descriptors, edit=edit, held=held)


def apply_edit(store: GalleryStore, gallery: Any, first_changed: int, old_rows: int, swap: Callable[[], None]) -> None:
    """Bring `store` from a gallery of `old_rows` rows to the edited `gallery`, whose rows before `first_changed`
    are unchanged: the changed rows leave the store, `swap` serves the new gallery, then they are written. A
    search at any moment gets ids that mean the same row in the gallery it is served with (at worst it misses
    the rows being written). The store is in step before the edit, so its ids are 0..old_rows-1: no id scan."""
    ids = np.arange(old_rows)
    drop_from(store, {name: int(first_changed) for name in store.spaces}, {name: ids for name in store.spaces}, edit=True)
    swap()
    fill(store, gallery, edit=True)


def open_gallery_store(
    uri: str | StoreURI, gallery: Any, classifiers: Optional[ClassifierSet], methods: Sequence[str], progress: bool = True
) -> GalleryStore:
    """A GalleryStore for `gallery` on `uri` serving `methods`, in step with it: an in-memory store is filled at
    start-up; a file or server store keeps the rows that match and rewrites the rest (its first start builds
    it; after an edit it missed, from the first changed row). A store whose first row is another image is
    refused: it belongs to another gallery."""
    from tqdm.auto import tqdm

    from cbir.stores.methods import STORED_METHODS

    store = GalleryStore(uri, gallery.spec.dim, [m for m in methods if m in STORED_METHODS], classifiers)
    bar = (lambda it: tqdm(it, desc=f"store {describe(store.uri)}", unit="batch")) if progress else None
    n = len(gallery)
    held = store.each(lambda _, space: space.ids())  # one id scan per space
    sets = {name: {int(i) for i in ids} for name, ids in held.items()}
    raw = sets[RAW_SPACE]
    if raw and not _row_matches(store, RAW_SPACE, gallery, raw, 0):
        raise ValueError(
            f"the store {describe(store.uri)} holds another gallery's vectors (its first row is not this "
            f"gallery's first image; this gallery has {n} images): point --store at a new file or collection"
        )
    first = {name: matching_prefix(store, name, gallery, sets[name]) for name in store.spaces}
    if drop_from(store, first, held) and first[RAW_SPACE] < len(raw):
        log.warning("store %s differed from the gallery from row %d on (an edit it missed): rewriting rows %d-%d",
                    describe(store.uri), first[RAW_SPACE], first[RAW_SPACE], n - 1)
    fill(store, gallery, progress=bar, held={name: ids[ids < first[name]] for name, ids in held.items()})
    return store
