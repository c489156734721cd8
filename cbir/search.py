"""The search engine: a gallery, its index, a feature extractor and classifiers, loaded once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

from .classifiers import ClassifierSet
from .colour import colour_descriptor
from .data import Gallery
from .features import BackboneMismatchError, EmbeddingSpec, FeatureExtractor
from .index import EmbeddingIndex, top_k
from .similarity import PREFERRED_METHODS, TASK_CHOICES, get_method, list_methods

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
            classifiers.check_backbone(gallery.spec, gallery.colour_spec)
        self.gallery = gallery
        self.extractor = extractor
        self.classifiers = classifiers
        self.index = EmbeddingIndex(gallery.embeddings, gallery.descriptors)

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

    def default_method(self) -> str:
        """The best available method (see PREFERRED_METHODS): what a UI preselects."""
        available = self.available_methods()
        return next((m for m in PREFERRED_METHODS if m in available), available[0])

    def _check(self, method: str, task: str, k: int | None = None) -> None:
        if method not in self.available_methods():
            raise ValueError(f"method {method!r} is not available; choose one of {self.available_methods()}")
        if task not in TASK_CHOICES:
            raise ValueError(f"task must be one of {TASK_CHOICES}, got {task!r}")
        if k is not None and not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")

    def embed(self, image: Any) -> np.ndarray:
        return self.extractor.embed_image(image)

    def describe(self, image: Any) -> Optional[np.ndarray]:
        """The image's colour descriptor, computed as the gallery's were (None if the gallery has none)."""
        spec = self.gallery.colour_spec
        return None if spec is None else colour_descriptor(image, spec)

    def search_vector(
        self,
        vector: np.ndarray,
        method: str = "cosine",
        task: str = "type",
        k: int = 10,
        exclude: int = -1,
        descriptor: Optional[np.ndarray] = None,
    ) -> list[Hit]:
        """Top-k gallery items for one embedding (+ colour descriptor); `exclude` drops that gallery row."""
        self._check(method, task, k)
        scores = get_method(method).score(
            vector, self.index, task=task, classifiers=self.classifiers, query_descriptors=descriptor
        )
        idx, sc = top_k(scores, k, exclude=np.array([exclude]))
        g = self.gallery
        return [
            Hit(r + 1, int(i), float(s), str(g.labels[i]), str(g.colours[i]), str(g.types[i]))
            for r, (i, s) in enumerate(zip(idx[0], sc[0]))
        ]

    def search(self, image: Any, method: str = "cosine", task: str = "type", k: int = 10, exclude: int = -1) -> list[Hit]:
        """Embed an image (path, bytes, PIL or array) and search the gallery with it."""
        self._check(method, task, k)
        return self.search_vector(self.embed(image), method, task, k, exclude, self.describe(image))

    def compare(self, image_a: Any, image_b: Any, method: str = "cosine", task: str = "type") -> float:
        """The method's score for one pair of images."""
        self._check(method, task)
        vecs = self.extractor.embed_images([image_a, image_b], batch_size=2)
        d = None
        if self.gallery.colour_spec is not None:
            d = (self.describe(image_a)[None, :], self.describe(image_b)[None, :])
        m = get_method(method)
        return float(m.score_pairs(vecs[:1], vecs[1:], task=task, classifiers=self.classifiers, descriptors=d)[0])


def extractor_for(
    spec: EmbeddingSpec,
    weights: Optional[str] = None,
    random_weights: bool = False,
    device: str = "auto",
) -> tuple[FeatureExtractor, bool]:
    """The extractor that embeds queries the way a gallery was embedded, and whether weights may differ.

    A random-init gallery gets the same seeded init. A pretrained one gets the weights its backbone's
    registered source provides (cbir.backbones: a pip package, or the Hub via timm) or the `weights` file, and a WeightsUnavailableError if they cannot be had, unless `random_weights`
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
