"""cbir.stores.sync.matching_prefix: a store in step costs one row read per space; a store that differs from
some row on is found by a binary search that gives exactly that row."""

from __future__ import annotations

import numpy as np
import pytest

from cbir.stores import GalleryStore
from cbir.stores.methods import RAW_SPACE
from cbir.stores.sync import matching_prefix

N, DIM = 37, 8


class Rows:
    """What matching_prefix reads of a Gallery: its embeddings, descriptors and length."""

    def __init__(self, embeddings: np.ndarray) -> None:
        self.embeddings, self.descriptors = embeddings, None

    def __len__(self) -> int:
        return len(self.embeddings)


@pytest.fixture()
def store_and_gallery():
    rng = np.random.default_rng(0)
    gallery = Rows(rng.standard_normal((N, DIM)).astype(np.float32))
    store = GalleryStore("numpy", DIM, ["cosine"])
    labels = {c: np.array(["x"] * N, dtype=object) for c in ("label", "type", "colour")}
    store.add(np.arange(N), gallery.embeddings, labels)
    space = store.spaces[RAW_SPACE]
    reads = []
    get = space.get
    space.get = lambda ids: reads.append(list(ids)) or get(ids)
    return store, gallery, reads


def test_a_store_in_step_is_confirmed_by_reading_its_last_row(store_and_gallery):
    store, gallery, reads = store_and_gallery
    assert matching_prefix(store, RAW_SPACE, gallery) == N and reads == [[N - 1]]


@pytest.mark.parametrize("first_changed", [0, 1, 17, N - 1])
def test_the_first_changed_row_is_found(store_and_gallery, first_changed):
    store, gallery, reads = store_and_gallery
    edited = Rows(gallery.embeddings.copy())
    edited.embeddings[first_changed:] = np.roll(edited.embeddings[first_changed:], 1, axis=0) + 1  # rows moved
    assert matching_prefix(store, RAW_SPACE, edited) == first_changed
    assert len(reads) <= 2 + int(np.ceil(np.log2(N)))
