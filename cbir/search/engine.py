"""The search engine: a gallery, its index, a feature extractor and classifiers, loaded once."""

from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np
from PIL import Image

from cbir.similarity.classifiers import ClassifierSet
from cbir.similarity.hedge import hedged_scores
from cbir.embed.colour import colour_descriptor
from cbir.gallery.dataset import Gallery
from cbir.search.dedup import DEFAULT_THRESHOLD
from cbir.search.answer import answer_json
from cbir.search.hit import Hit
from cbir.search.options import SearchOptions
from cbir.search.query import Query, QueryBuilder
from cbir.search.ranking import rank
from cbir.search.text import TEXT_CACHE_SIZE, TextQueries
from cbir.search.explain import Explanation, explain_pair
from cbir.core.rows import check_indices
from cbir.search.feedback import rocchio
from cbir.embed.extractor import FeatureExtractor
from cbir.core.filters import Filters, check_values, label_mask
from cbir.search.prediction import Prediction, predict_attributes
from cbir.index import EmbeddingIndex, top_k
from cbir.similarity.registry import PREFERRED_METHODS, TASK_CHOICES, get_method, list_methods

MAX_K = 100
MAX_BATCH = 16  # query images per search_batch call, scored as one (Q, N) matrix


class SearchEngine(TextQueries, QueryBuilder):
    """Query-by-image over one gallery; the extractor must embed the way the gallery was embedded."""

    def __init__(
        self,
        gallery: Gallery,
        extractor: FeatureExtractor,
        classifiers: Optional[ClassifierSet] = None,
        allow_weights_mismatch: bool = False,
        store: Any = None,
    ) -> None:
        gallery.spec.check_compatible(extractor.spec, allow_weights_mismatch=allow_weights_mismatch)
        if classifiers is not None:
            classifiers.check_backbone(gallery.spec, gallery.colour_spec)
        if gallery.colour_spec is not None:  # the recipe's needs (the `salient` model) fail here, not at a query
            colour_descriptor(Image.new("RGB", (gallery.colour_spec.size,) * 2), gallery.colour_spec)
        self.gallery = gallery
        self.extractor = extractor
        self.classifiers = classifiers
        self.index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)
        self._text_vector = functools.lru_cache(maxsize=TEXT_CACHE_SIZE)(self._embed_text)
        self.store = store  # a cbir.stores.GalleryStore: searches go to it (filters pushed down); None = in-process
        # Random-init features are all alike (median cosine ~0.95): there only byte-identical copies collapse.
        self.dedup_threshold: Optional[float] = None if gallery.spec.is_random else DEFAULT_THRESHOLD

    def set_gallery(self, gallery: Gallery, first_changed: int = 0) -> None:
        """Serve another version of the gallery (same backbone): the live gallery's add and remove. Rows before
        `first_changed` are unchanged; a vector store is brought in step from there (cbir.stores.sync)."""
        self.gallery.spec.check_compatible(gallery.spec)

        def swap() -> None:
            self.gallery, self.index = gallery, EmbeddingIndex(gallery.embeddings, gallery.descriptors)

        if self.store is None:
            swap()
        else:
            from cbir.stores.sync import apply_edit

            apply_edit(self.store, gallery, first_changed, len(self.gallery), swap)

    def weights_warning(self) -> Optional[str]:
        """What a user must be told when features come from random-init weights; None for real weights."""
        g, q = self.gallery.spec, self.extractor.spec
        if q.is_random and not g.is_random:
            return (
                "SMOKE RUN: random query features, scores are meaningless. "
                f"The gallery was embedded with pretrained {g.model} weights, which were not loaded here "
                f"(--random-weights); queries use {q.describe()}."
            )
        if g.is_random:
            return (
                f"Randomly initialised weights: the gallery and the queries are embedded with {g.describe()}, "
                "not pretrained weights (--random-weights). This is a smoke run only; results are not meaningful."
            )
        return None

    def available_methods(self) -> list[str]:
        """Methods this engine can serve: the learned ones only when their classifiers are loaded, and with a
        vector store only those the store can run (cbir.stores.methods)."""
        have = {k for k, _ in self.classifiers.classifiers} if self.classifiers else set()
        methods = [m for m in list_methods() if all(r in have for r in get_method(m).requires)]
        return methods if self.store is None else [m for m in methods if m in self.store.methods]

    def default_method(self) -> str:
        """The best available method (see PREFERRED_METHODS): what a UI preselects."""
        available = self.available_methods()
        return next((m for m in PREFERRED_METHODS if m in available), available[0])

    def _method(self, method: Optional[str]) -> str:
        """`method`, or the engine's default_method() when None."""
        return method or self.default_method()

    def _check(self, method: str, task: str, k: int | None = None) -> None:
        if method not in self.available_methods():
            raise ValueError(f"method {method!r} is not available; choose one of {self.available_methods()}")
        if task not in TASK_CHOICES:
            raise ValueError(f"task must be one of {TASK_CHOICES}, got {task!r}")
        if k is not None and not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")

    def embed(self, image: Any) -> np.ndarray:
        return self.extractor.embed_image(image)

    def embed_batch(self, images: list[Any]) -> np.ndarray:
        """(Q, D) embeddings of several images: one forward pass, except on OpenVINO, which compiles a model per
        batch size (~1 s each) and here spent more CPU per image batched (51-60 ms) than one at a time (38 ms)."""
        one_by_one = getattr(self.extractor.runtime, "name", "") == "openvino"
        return self.extractor.embed_images(images, batch_size=1 if one_by_one else max(1, len(images)))

    def needs_descriptor(self, method: str, task: str = "type") -> bool:
        """Whether `method` reads the query's colour descriptor (a learned method trained with it): only then is
        it computed."""
        return self.gallery.colour_spec is not None and get_method(method).uses_descriptor(task, self.classifiers)

    def describe(self, image: Any) -> Optional[np.ndarray]:
        """The image's colour descriptor, computed as the gallery's were (None if the gallery has none)."""
        spec = self.gallery.colour_spec
        return None if spec is None else colour_descriptor(image, spec)

    def refine(
        self, vector: np.ndarray, positives: Optional[list[int]] = None, negatives: Optional[list[int]] = None
    ) -> np.ndarray:
        """Relevance feedback: the query moved towards the `positives` and away from the `negatives` (Rocchio)."""
        n, v = len(self.gallery), self.index.vectors
        pos, neg = check_indices(positives, n, "positives"), check_indices(negatives, n, "negatives")
        return rocchio(vector, v[pos], v[neg]) if len(pos) or len(neg) else np.asarray(vector, dtype=np.float32)

    def label_columns(self) -> dict[str, np.ndarray]:
        """The label columns filters can use: {column: per-image values}."""
        g = self.gallery
        return {"type": g.types, "colour": g.colours, "label": g.labels}

    def scores(
        self, vector: np.ndarray, method: Optional[str] = None, task: str = "type",
        descriptor: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """(N,) the method's score of one embedding (+ its colour descriptor) against every gallery image."""
        return self.score_matrix(vector, method, task, descriptor)[0]

    def score_matrix(
        self, vectors: np.ndarray, method: Optional[str] = None, task: str = "type", descriptors: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """(Q, N) scores of Q embeddings (+ their colour descriptors) against the gallery: one matrix operation."""
        method = self._method(method)
        self._check(method, task)
        scores = get_method(method).score(
            vectors, self.index, task=task, classifiers=self.classifiers, query_descriptors=descriptors
        )
        # the default ranking hedges an uncertain class guess (cbir.similarity.hedge); other methods are unchanged
        return hedged_scores(method, scores, vectors, self.index, task, self.classifiers, descriptors)

    def options(self, options: Optional[SearchOptions] = None, **fields: Any) -> SearchOptions:
        """`options` with `fields` changed (SearchOptions.of), the method resolved to the default and checked."""
        o = SearchOptions.of(options, **fields)
        o = o if o.method else o.replace(method=self.default_method())
        self._check(o.method, o.task, o.k)
        if o.min_score is not None and not np.isfinite(o.min_score):
            raise ValueError(f"min_score must be a finite number (or none); got {o.min_score!r}")
        if o.filters:  # the gallery's distinct values are gathered only when a filter needs checking (1-2 ms a query)
            check_values(self.label_columns(), o.filters)
        return o

    def search_vector(
        self,
        vector: np.ndarray,
        method: Optional[str] = None,
        task: Optional[str] = None,
        *,
        options: Optional[SearchOptions] = None,
        descriptor: Optional[np.ndarray] = None,
        scores: Optional[np.ndarray] = None,
        dedup_threshold: Optional[float] | str = "auto",
        **fields: Any,
    ) -> list[Hit]:
        """Top-k gallery items for one embedding (+ colour descriptor) under `options` (SearchOptions; `fields`
        change it: k, exclude, filters, dedup, min_score).

        `filters` ({"type": [...], "colour": [...]}) masks rows before top-k, so k come back whenever k match;
        `dedup` shows same-sha1 and near-identical (cosine >= dedup_threshold; "auto" = the engine's
        `dedup_threshold`, None = sha1 only) results once, with `copies`; `min_score` leaves out hits scoring
        below it (fewer than k may come back); `scores` = this query's (N,) row of `scores`, if already computed.
        """
        d = None if descriptor is None else np.asarray(descriptor)[None]
        s = None if scores is None else np.asarray(scores)[None]
        return self.search_vectors(np.asarray(vector)[None], method, task, options=options, descriptors=d, scores=s,
                                   dedup_threshold=dedup_threshold, **fields)[0]

    def search_vectors(
        self,
        vectors: np.ndarray,
        method: Optional[str] = None,
        task: Optional[str] = None,
        *,
        options: Optional[SearchOptions] = None,
        descriptors: Optional[np.ndarray] = None,
        scores: Optional[np.ndarray] = None,
        dedup_threshold: Optional[float] | str = "auto",
        **fields: Any,
    ) -> list[list[Hit]]:
        """One hit list per row of `vectors` (Q, D), the options as in `search_vector` (`exclude`: one gallery row
        per query, or one for all); the batch scores the gallery in one matrix product (`score_matrix`)."""
        o = self.options(options, method=method, task=task, **fields)
        q = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        ex = o.excludes(len(q))
        d = None if descriptors is None else np.atleast_2d(np.asarray(descriptors, dtype=np.float32))
        if scores is None and self.store is None:
            scores = self.score_matrix(q, o.method, o.task, d)
        threshold = self.dedup_threshold if dedup_threshold == "auto" else dedup_threshold
        return [
            self._rank(q[i], o, int(ex[i]), threshold, None if d is None else d[i], None if scores is None else scores[i])
            for i in range(len(q))
        ]

    def _rank(
        self, vector: Optional[np.ndarray], o: SearchOptions, exclude: int, threshold: Optional[float],
        descriptor: Optional[np.ndarray], row: Optional[np.ndarray], in_process: bool = False,
    ) -> list[Hit]:
        """One query's hits: top-k of its score row (or the store's; `in_process` = always the row), dedup and
        min_score applied."""
        g, ids = self.gallery, self.gallery.ids
        idx, sc, copies = rank(
            lambda fetch: self._candidates(vector, o.method, o.task, fetch, exclude, o.filters, descriptor, row,
                                           in_process),
            o.k, len(g) - int(0 <= exclude < len(g)), o.dedup, g.hashes, _UnitRows(self.index), threshold, o.min_score,
        )
        return [
            Hit(r + 1, int(i), float(s), str(g.labels[i]), _opt(g.colours[i]), _opt(g.types[i]), int(c), str(ids[i]),
                **item_details(g, int(i)))
            for r, (i, s, c) in enumerate(zip(idx, sc, copies))
        ]

    def _candidates(
        self, vector: np.ndarray, method: str, task: str, fetch: int, exclude: int, filters: Optional[Filters],
        descriptor: Optional[np.ndarray] = None, row: Optional[np.ndarray] = None, in_process: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best `fetch` (index, score) that pass the filters: from the store if there is one (and not
        `in_process`), else in-process (from `row`, the query's precomputed scores, when given)."""
        if self.store is not None and not in_process:
            idx, sc = self.store.search(
                method, vector, fetch, task=task, filters=filters, exclude=[exclude], descriptors=descriptor
            )
            keep = idx[0] >= 0
            return idx[0][keep], sc[0][keep]
        scores = np.array(self.scores(vector, method, task, descriptor) if row is None else row, dtype=np.float32)
        mask = label_mask(self.label_columns(), filters)
        if mask is not None:
            scores[~mask] = -np.inf
        if 0 <= exclude < len(scores):
            scores[exclude] = -np.inf
        idx, sc = (a[0] for a in top_k(scores, min(fetch, int(np.isfinite(scores).sum()))))
        return idx, sc

    def search_query(
        self, query: Query, options: SearchOptions, scores: Optional[np.ndarray] = None
    ) -> list[list[Hit]]:
        """One hit list per row of a built `query` (`self.query`) under checked `options` (`self.options`)."""
        return self.search_vectors(query.vectors, options=options, descriptors=query.descriptors, scores=scores)

    def search(
        self,
        image: Any,
        method: Optional[str] = None,
        task: Optional[str] = None,
        *,
        options: Optional[SearchOptions] = None,
        text: Optional[str] = None,
        box: Any = None,
        positives: Optional[list[int]] = None,
        negatives: Optional[list[int]] = None,
        **fields: Any,
    ) -> list[Hit]:
        """Search the gallery with an image (path, bytes, PIL or array), cropped to `box`, nudged by `text` (compose)
        and refined by feedback; `options`/`fields` as `search_vector`."""
        return self.search_batch([image], method, task, options=options, text=text, boxes=[box], positives=positives,
                                 negatives=negatives, **fields)[0]

    def search_batch(
        self,
        images: list[Any],
        method: Optional[str] = None,
        task: Optional[str] = None,
        *,
        options: Optional[SearchOptions] = None,
        text: Optional[str] = None,
        boxes: Optional[list[Any]] = None,
        positives: Optional[list[int]] = None,
        negatives: Optional[list[int]] = None,
        **fields: Any,
    ) -> list[list[Hit]]:
        """One hit list per image (at most MAX_BATCH): built by `query` (one embedding pass, colour descriptors only
        when read), scored in one matrix product. Options as `search` (`exclude`: one per image, or one for all)."""
        o = self.options(options, method=method, task=task, **fields)
        self._check_batch(images)
        q = self.query(images, boxes=boxes, text=text, positives=positives, negatives=negatives, method=o.method,
                       task=o.task, predict=False)
        return self.search_query(q, o)

    def answers(
        self,
        images: list[Any],
        method: Optional[str] = None,
        task: Optional[str] = None,
        *,
        options: Optional[SearchOptions] = None,
        text: Optional[str] = None,
        boxes: Optional[list[Any]] = None,
        positives: Optional[list[int]] = None,
        negatives: Optional[list[int]] = None,
        **fields: Any,
    ) -> list[dict[str, Any]]:
        """`search_batch`'s whole answers, JSON-able, in the API's shape (cbir.search.answer): one per image."""
        o = self.options(options, method=method, task=task, **fields)
        self._check_batch(images)
        q = self.query(images, boxes=boxes, text=text, positives=positives, negatives=negatives, method=o.method,
                       task=o.task)
        return [
            answer_json(hits, o, exclude=e, query=p, positives=positives, negatives=negatives, box=b)
            for hits, e, p, b in zip(self.search_query(q, o), o.excludes(len(images)), q.predictions, q.boxes)
        ]

    def answer(self, image: Any, method: Optional[str] = None, task: Optional[str] = None, **kwargs: Any) -> dict[str, Any]:
        """One photo's whole answer: {"method", "task", "query": predict(), "results": [Hit.to_dict()], ...}."""
        box = kwargs.pop("box", None)
        return self.answers([image], method, task, boxes=[box], **kwargs)[0]

    @staticmethod
    def _check_batch(images: list[Any]) -> None:
        if not 1 <= len(images) <= MAX_BATCH:
            raise ValueError(f"send between 1 and {MAX_BATCH} images; got {len(images)}")

    def predict(self, vector: np.ndarray, descriptor: Optional[np.ndarray] = None) -> Prediction:
        """The query's predicted type and colour with probabilities (cbir.search.prediction; {} without classifiers)."""
        return predict_attributes(self.classifiers, vector, descriptor)

    def compare(self, image_a: Any, image_b: Any, method: Optional[str] = None, task: str = "type") -> float:
        """The method's score for one pair of images."""
        method = self._method(method)
        self._check(method, task)
        vecs = self.extractor.embed_images([image_a, image_b], batch_size=2)
        d = None
        if self.needs_descriptor(method, task):
            d = (self.describe(image_a)[None, :], self.describe(image_b)[None, :])
        m = get_method(method)
        return float(m.score_pairs(vecs[:1], vecs[1:], task=task, classifiers=self.classifiers, descriptors=d)[0])

    def explain(
        self, image: Any, index: int, method: Optional[str] = None, task: str = "type"
    ) -> tuple[Explanation, float]:
        """Heat-maps of a query and gallery image `index` against each other, and the method's score of the pair."""
        method = self._method(method)
        self._check(method, task)
        if not 0 <= int(index) < len(self.gallery):
            raise ValueError(f"index must be a gallery index 0..{len(self.gallery) - 1}; got {index}")
        other = self.gallery.image(int(index))
        q = self.embed(image)
        d = None
        if self.needs_descriptor(method, task):
            d = (self.describe(image)[None, :], self.index.descriptors[[int(index)]])
        score = get_method(method).score_pairs(
            q[None], self.index.vectors[[int(index)]], task=task, classifiers=self.classifiers, descriptors=d
        )[0]
        return explain_pair(self.extractor, image, other), float(score)


def item_details(gallery: Gallery, i: int) -> dict[str, Any]:
    """A hit's catalogue details from the gallery row it stands for (so every store answers them alike): the item's
    manifest columns and which of its type / colour are predicted, with their probabilities."""
    return {"metadata": gallery.metadata(i), "predicted": gallery.predicted(i)}


class _UnitRows:
    """Unit-length gallery vectors, computed only for the rows asked (`unit[idx]`)."""

    def __init__(self, index: EmbeddingIndex) -> None:
        self.index = index

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        return self.index.vectors[idx] * self.index.inv_norms[idx, None]


def _opt(value: object) -> Optional[str]:
    return None if value is None else str(value)
