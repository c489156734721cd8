"""The search engine: a gallery, its index, a feature extractor and classifiers, loaded once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

from .classifiers import ClassifierSet
from .data import Gallery
from .dedup import DEFAULT_THRESHOLD, collapse_duplicates
from .explain import Explanation, explain_pair
from .feedback import check_indices, rocchio
from .features import BackboneMismatchError, EmbeddingSpec, FeatureExtractor
from .filters import Filters, check_values, label_mask
from .index import EmbeddingIndex, top_k
from .similarity import TASK_CHOICES, get_method, list_methods

MAX_K = 100


@dataclass(frozen=True)
class Hit:
    """One result: gallery row, rank (1-based), score and labels."""

    rank: int
    index: int
    score: float
    label: str
    colour: str
    type: str
    copies: int = 1  # gallery items this result stands for when duplicates are collapsed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SearchEngine:
    """Query-by-image over one gallery; the extractor must embed the way the gallery was embedded."""

    def __init__(
        self,
        gallery: Gallery,
        extractor: FeatureExtractor,
        classifiers: Optional[ClassifierSet] = None,
        allow_weights_mismatch: bool = False,
    ) -> None:
        gallery.spec.check_compatible(extractor.spec, allow_weights_mismatch=allow_weights_mismatch)
        if classifiers is not None:
            classifiers.check_backbone(gallery.spec)
        self.gallery = gallery
        self.extractor = extractor
        self.classifiers = classifiers
        self.index = EmbeddingIndex(gallery.embeddings)
        # Random-init features are all alike (median cosine ~0.95): there only byte-identical copies collapse.
        self.dedup_threshold: Optional[float] = None if gallery.spec.is_random else DEFAULT_THRESHOLD

    def set_gallery(self, gallery: Gallery) -> None:
        """Serve another version of the gallery (same backbone): the live gallery's add and remove."""
        self.gallery.spec.check_compatible(gallery.spec)
        self.gallery, self.index = gallery, EmbeddingIndex(gallery.embeddings)

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
                "not pretrained weights. This is a demo / smoke run only; results are not meaningful."
            )
        return None

    def available_methods(self) -> list[str]:
        """Methods this engine can serve: the learned ones only when their classifiers are loaded."""
        have = {k for k, _ in self.classifiers.classifiers} if self.classifiers else set()
        return [m for m in list_methods() if not get_method(m).learned or m in have]

    def _check(self, method: str, task: str, k: int | None = None) -> None:
        if method not in self.available_methods():
            raise ValueError(f"method {method!r} is not available; choose one of {self.available_methods()}")
        if task not in TASK_CHOICES:
            raise ValueError(f"task must be one of {TASK_CHOICES}, got {task!r}")
        if k is not None and not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")

    def embed(self, image: Any) -> np.ndarray:
        return self.extractor.embed_image(image)

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

    def scores(self, vector: np.ndarray, method: str = "cosine", task: str = "type") -> np.ndarray:
        """(N,) the method's score of one embedding against every gallery image."""
        self._check(method, task)
        return get_method(method).score(vector, self.index, task=task, classifiers=self.classifiers)[0]

    def search_vector(
        self,
        vector: np.ndarray,
        method: str = "cosine",
        task: str = "type",
        k: int = 10,
        exclude: int = -1,
        filters: Optional[Filters] = None,
        dedup: bool = False,
        dedup_threshold: Optional[float] | str = "auto",
    ) -> list[Hit]:
        """Top-k gallery items for one embedding; `exclude` drops that gallery row (the query itself).

        `filters` ({"type": [...], "colour": [...]}) masks rows before top-k, so k come back whenever k match;
        `dedup` shows same-sha1 and near-identical (cosine >= dedup_threshold; "auto" = the engine's
        `dedup_threshold`, None = sha1 only) results once, with `copies`.
        """
        self._check(method, task, k)
        scores = np.array(self.scores(vector, method, task), dtype=np.float32)
        check_values(self.label_columns(), filters)
        mask = label_mask(self.label_columns(), filters)
        if mask is not None:
            scores[~mask] = -np.inf
        if 0 <= exclude < len(scores):
            scores[exclude] = -np.inf
        n_valid = int(np.isfinite(scores).sum())
        want = min(k, n_valid)
        fetch = min(n_valid, max(2 * k, k + 20)) if dedup else want
        while True:
            idx, sc = (a[0] for a in top_k(scores, fetch))
            copies = np.ones(len(idx), dtype=np.int64)
            if dedup:
                unit = self.index.vectors[idx] * self.index.inv_norms[idx, None]
                thr = self.dedup_threshold if dedup_threshold == "auto" else dedup_threshold
                leaders, copies = collapse_duplicates(self.gallery.hashes[idx], unit, thr)
                idx, sc = idx[leaders], sc[leaders]
            if len(idx) >= want or fetch >= n_valid:
                break
            fetch = min(n_valid, fetch * 4)
        g = self.gallery
        return [
            Hit(r + 1, int(i), float(s), str(g.labels[i]), str(g.colours[i]), str(g.types[i]), int(c))
            for r, (i, s, c) in enumerate(zip(idx[:k], sc[:k], copies[:k]))
        ]

    def search(
        self,
        image: Any,
        method: str = "cosine",
        task: str = "type",
        k: int = 10,
        exclude: int = -1,
        filters: Optional[Filters] = None,
        dedup: bool = False,
    ) -> list[Hit]:
        """Embed an image (path, bytes, PIL or array) and search the gallery with it."""
        self._check(method, task, k)
        return self.search_vector(self.embed(image), method, task, k, exclude, filters=filters, dedup=dedup)

    def compare(self, image_a: Any, image_b: Any, method: str = "cosine", task: str = "type") -> float:
        """The method's score for one pair of images."""
        self._check(method, task)
        vecs = self.extractor.embed_images([image_a, image_b], batch_size=2)
        m = get_method(method)
        return float(m.score_pairs(vecs[:1], vecs[1:], task=task, classifiers=self.classifiers)[0])


    def explain(self, image: Any, index: int, method: str = "cosine", task: str = "type") -> tuple[Explanation, float]:
        """Heat-maps of a query and gallery image `index` against each other, and the method's score of the pair."""
        self._check(method, task)
        if not 0 <= int(index) < len(self.gallery):
            raise ValueError(f"index must be a gallery index 0..{len(self.gallery) - 1}; got {index}")
        other = self.gallery.image(int(index))
        q = self.embed(image)
        score = get_method(method).score_pairs(
            q[None], self.index.vectors[[int(index)]], task=task, classifiers=self.classifiers
        )[0]
        return explain_pair(self.extractor, image, other), float(score)


def extractor_for(
    spec: EmbeddingSpec,
    weights: Optional[str] = None,
    random_weights: bool = False,
    device: str = "auto",
) -> tuple[FeatureExtractor, bool]:
    """The extractor that embeds queries the way a gallery was embedded, and whether weights may differ.

    A random-init gallery gets the same seeded init. A pretrained one gets the Hub weights or the
    `weights` file, and a WeightsUnavailableError if they cannot be had, unless `random_weights`
    asks for a smoke run (random-init queries; the engine's weights_warning says so).
    """
    seed = 0 if spec.seed is None else int(spec.seed)
    if spec.is_random:
        if weights:
            raise BackboneMismatchError(
                f"the gallery was embedded with random-init weights ({spec.describe()}); "
                f"a weights file ({weights}) would not match it"
            )
        return FeatureExtractor(spec.model, weights="random", device=device, seed=seed), False
    if random_weights:
        return FeatureExtractor(spec.model, weights="random", device=device, seed=seed), True
    return FeatureExtractor(spec.model, weights=weights or "pretrained", device=device), False


def load_engine(
    gallery: str,
    classifiers: Optional[str] = None,
    weights: Optional[str] = None,
    random_weights: bool = False,
    device: str = "auto",
) -> SearchEngine:
    """Load a gallery and classifiers (local folders or Hub ids) and the matching backbone, once."""
    g = Gallery.load(gallery)
    extractor, allow_mismatch = extractor_for(g.spec, weights, random_weights, device)
    clf = ClassifierSet.load(classifiers) if classifiers else None
    return SearchEngine(g, extractor, clf, allow_weights_mismatch=allow_mismatch)
