"""A gallery on a vector store: one VectorStore per space the methods need, written together,
searched by method name (exact, approximate, shortlist + rerank), filters pushed down."""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from cbir.similarity.classifiers import CLASSIFIER_KINDS, ClassifierSet
from cbir.core.filters import Filters
from cbir.stores.base import LABEL_COLUMNS, Labels, VectorStore
from cbir.stores.methods import RAW_SPACE, SPACES, plan, spaces_for
from cbir.stores.uri import StoreURI, open_store, parse_store_uri


class GalleryStore:
    """The spaces of one gallery on one backend; gallery row numbers are the ids."""

    def __init__(
        self,
        uri: str | StoreURI,
        dim: int,
        methods: Sequence[str],
        classifiers: Optional[ClassifierSet] = None,
    ) -> None:
        self.uri = uri if isinstance(uri, StoreURI) else parse_store_uri(uri)
        self.dim, self.methods, self.classifiers = int(dim), list(methods), classifiers
        self.spaces: dict[str, VectorStore] = _each(
            [(name, SPACES[name]) for name in spaces_for(self.methods)], self.uri.remote,
            lambda name, space: open_store(self.uri, name, space.columns(self.dim, classifiers), space.metric),
        )

    def each(self, fn: Callable[[str, VectorStore], Any]) -> dict[str, Any]:
        """fn(name, space) for every space, in order; on a server all at once (see _each)."""
        return _each(list(self.spaces.items()), self.uri.remote, fn)

    def add(
        self,
        ids: np.ndarray,
        embeddings: np.ndarray,
        labels: Labels,
        descriptors: Optional[np.ndarray] = None,
        spaces: Optional[Sequence[str]] = None,
    ) -> None:
        """Upsert one batch into every space (or only `spaces`), each storing its own per-image vectors;
        `descriptors` are the images' colour descriptors (None when the gallery has none)."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        for name in self.spaces if spaces is None else spaces:
            vectors = SPACES[name].image_vectors(embeddings, self.classifiers, descriptors)
            self.spaces[name].upsert(ids, vectors, labels)

    def delete(self, ids: Sequence[int]) -> None:
        for store in self.spaces.values():
            store.delete(ids)

    def stored_ids(self) -> np.ndarray:
        """Ids present in every space: what a resumed build may skip."""
        sets = [store.ids() for store in self.spaces.values()]
        out = sets[0]
        for s in sets[1:]:
            out = np.intersect1d(out, s)
        return np.sort(out)

    def missing_ids(self, n: int, held: Optional[dict[str, np.ndarray]] = None) -> dict[str, np.ndarray]:
        """Per space, the gallery rows 0..n-1 it does not hold (a space added later lacks them all); `held`: each
        space's ids when the caller has them (an id scan on a server costs a round trip per page)."""
        held = held or {}
        return {name: np.setdiff1d(np.arange(n), held[name] if name in held else store.ids())
                for name, store in self.spaces.items()}

    def count(self) -> int:
        return min(store.count() for store in self.spaces.values())

    def flush(self, edit: bool = False) -> None:
        self.each(lambda _, store: store.flush(edit))

    def close(self) -> None:
        for store in self.spaces.values():
            store.close()

    def embeddings(self, ids: Sequence[int]) -> np.ndarray:
        return self.spaces[RAW_SPACE].get(ids)

    def search(
        self,
        method: str,
        queries: np.ndarray,
        k: int,
        task: str = "type",
        filters: Optional[Filters] = None,
        exclude: Optional[Sequence[int]] = None,
        descriptors: Optional[np.ndarray] = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids and scores (Q, k) of `method` for query embeddings (and their colour `descriptors`, for methods
        that use them), best first; `exclude` drops one id per query (-1 = none) and `filters`
        ({column: [values]}) is applied by the store before top-k."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        qd = None if descriptors is None else np.atleast_2d(np.asarray(descriptors, dtype=np.float32))
        exclude = np.full(len(q), -1) if exclude is None else np.broadcast_to(np.asarray(exclude), (len(q),))
        m = plan(method, task)
        want = int(k) + int((exclude >= 0).any())
        qv = m.query_vectors(q, task, self.classifiers, qd)
        ids, raw = self.spaces[m.space].search(qv, max(want, m.shortlist), filters)
        if m.rerank is not None:
            scores = self._rerank(m.rerank, q, ids, task)
        elif m.finish is not None:
            scores = m.finish(raw, q, task, self.classifiers)
        else:
            scores = raw
        kind = CLASSIFIER_KINDS.get(method)
        if kind is not None and not kind.per_image:  # pair classifiers score an identical image 1, as in-process
            ids, scores = self._identical_scores_one(q, np.array(ids), np.array(scores, np.float32), filters)
        scores = np.where((ids < 0) | (ids == exclude[:, None]), -np.inf, scores).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")[:, : int(k)]
        ids, scores = np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)
        return np.where(np.isfinite(scores), ids, -1), scores

    def _identical_scores_one(
        self, q: np.ndarray, ids: np.ndarray, scores: np.ndarray, filters: Optional[Filters]
    ) -> tuple[np.ndarray, np.ndarray]:
        """A stored vector equal to the query scores 1 (cbir.similarity.classifiers.PairClassifier.score), in the list or not."""
        near, _ = self.spaces[RAW_SPACE].search(q, 1, filters)
        for r, j in enumerate(near[:, 0]):
            if j < 0 or not np.array_equal(self.embeddings([int(j)])[0], q[r]):
                continue
            col = np.flatnonzero(ids[r] == j)
            col = col[0] if col.size else int(np.argmin(np.where(ids[r] < 0, -np.inf, scores[r])))
            ids[r, col], scores[r, col] = j, 1.0
        return ids, scores

    def _rerank(self, fn: Callable, q: np.ndarray, ids: np.ndarray, task: str) -> np.ndarray:
        out = np.full(ids.shape, -np.inf, np.float32)
        for r in range(len(q)):
            ok = ids[r] >= 0
            if ok.any():
                out[r, ok] = fn(q[r], self.embeddings(ids[r, ok]), task, self.classifiers)
        return out


def _each(items: list[tuple[str, Any]], at_once: bool, fn: Callable[[str, Any], Any]) -> dict[str, Any]:
    """{name: fn(name, value)} in order; `at_once` in threads (creating, loading and flushing a server's collection
    mostly wait for the server: five spaces took 15 s one after another)."""
    if not at_once or len(items) < 2:
        return {name: fn(name, value) for name, value in items}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(items)) as pool:
        futures = [pool.submit(fn, name, value) for name, value in items]
        return {name: f.result() for (name, _), f in zip(items, futures)}


def fill_from_gallery(
    store: GalleryStore,
    embeddings: np.ndarray,
    columns: dict[str, np.ndarray],
    batch_size: int = 4096,
    progress: Optional[Callable[[Iterable], Iterable]] = None,
    descriptors: Optional[np.ndarray] = None,
    edit: bool = False,
    held: Optional[dict[str, np.ndarray]] = None,
) -> int:
    """Write to each space the gallery rows it does not hold yet (resumable; a space added later, such as
    attribute once classifiers exist, is filled alone; a learned space made by other classifiers is
    rewritten), then flush (`edit`: a live edit's few rows, see VectorStore.flush); returns the rows written.
    `held`: each space's ids, when the caller knows them."""
    missing = store.missing_ids(len(embeddings), held)
    for name, lacking in missing.items():
        if SPACES[name].learned and _stale(store, name, lacking, embeddings, descriptors):
            missing[name] = np.arange(len(embeddings))
    todo = functools.reduce(np.union1d, missing.values())
    starts = range(0, len(todo), batch_size)
    for s in progress(starts) if progress else starts:
        batch = todo[s : s + batch_size]
        for name, lacking in missing.items():
            rows = batch[np.isin(batch, lacking)]
            if len(rows):
                store.add(
                    rows,
                    np.asarray(embeddings[rows], np.float32),
                    {c: np.asarray(columns[c])[rows] for c in LABEL_COLUMNS},
                    None if descriptors is None else np.asarray(descriptors[rows], np.float32),
                    spaces=[name],
                )
    if len(todo):
        store.flush(edit)
    return int(len(todo))


def _stale(
    store: GalleryStore, name: str, lacking: np.ndarray, embeddings: np.ndarray, descriptors: Optional[np.ndarray]
) -> bool:
    """Whether a stored row of a learned space differs from what the loaded classifiers give (they were retrained)."""
    held = np.setdiff1d(np.arange(len(embeddings)), lacking)
    if not len(held):
        return False
    i = held[:1]
    d = None if descriptors is None else np.asarray(descriptors[i], np.float32)
    want = SPACES[name].image_vectors(np.asarray(embeddings[i], np.float32), store.classifiers, d)
    return not np.allclose(store.spaces[name].get(i), want, rtol=1e-4, atol=1e-5)


def gallery_columns(gallery: Any) -> dict[str, np.ndarray]:
    """The label columns of a cbir.gallery.dataset.Gallery, as the stores keep them."""
    return {"label": np.asarray(gallery.labels), "colour": np.asarray(gallery.colours), "type": np.asarray(gallery.types)}
