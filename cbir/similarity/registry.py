"""The similarity methods, behind one registry keyed by name; higher score = more similar.

Each method scores queries against a whole gallery (`score`, a (Q, N) matrix) and pairs
element-wise (`score_pairs`, used by evaluation). Learned methods take a ClassifierSet and a task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from cbir.similarity import hybrid
from cbir.similarity.classifiers import CLASSIFIER_KINDS, ClassifierSet
from cbir.index import EmbeddingIndex, as_queries, l2_normalize

TASK_CHOICES: tuple[str, ...] = ("type", "colour", "both")
# The default everywhere (engine, scripts, app) when available, in this order (issue 18: docs/quality.md).
PREFERRED_METHODS: tuple[str, ...] = ("hybrid", "attribute", "cosine")
DEFAULT_METHOD = PREFERRED_METHODS[0]

MatrixFn = Callable[..., np.ndarray]
PairFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class SimilarityMethod:
    """A named similarity: `score(queries, index)` -> (Q, N); `score_pairs(a, b)` -> (P,).

    A learned method without `score_fn` is a classifier kind; one with it (and `requires`) scores itself
    from the classifiers of the kinds it requires."""

    name: str
    label: str
    learned: bool
    score_fn: Optional[MatrixFn]  # None for classifier kinds: they score through their classifiers
    pair_fn: Optional[PairFn]
    uses: tuple[str, ...] = ()  # classifier kinds a composite learned method needs

    @property
    def requires(self) -> tuple[str, ...]:
        """The classifier kinds that must be loaded for this method (none for the unlearned ones)."""
        return self.uses or ((self.name,) if self.learned else ())

    def score(
        self,
        queries: np.ndarray,
        index: EmbeddingIndex,
        task: str = "type",
        classifiers: Optional[ClassifierSet] = None,
        query_descriptors: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """(Q, N) scores; `query_descriptors` (Q, d) are the queries' colour descriptors, for methods using them."""
        q = as_queries(queries, index.dim)
        qd = None if query_descriptors is None else np.atleast_2d(np.asarray(query_descriptors, np.float32))
        if self.uses:
            return self.score_fn(q, index, task, _require(classifiers, self.name), qd)
        if self.learned:
            return _require(classifiers, self.name).score(self.name, task, q, index, qd)
        return self.score_fn(q, index)

    def uses_descriptor(self, task: str = "type", classifiers: Optional[ClassifierSet] = None) -> bool:
        """Whether scoring reads the queries' colour descriptors: learned methods whose classifiers use them, and
        composite methods (`uses`), which may also compare the descriptors themselves."""
        if not self.learned or classifiers is None:
            return False
        return bool(self.uses) or classifiers.uses_descriptor(self.name, task)

    def score_pairs(
        self,
        a: np.ndarray,
        b: np.ndarray,
        task: str = "type",
        classifiers: Optional[ClassifierSet] = None,
        descriptors: Optional[tuple[np.ndarray, np.ndarray]] = None,
    ) -> np.ndarray:
        """(P,) scores of row-aligned pairs; `descriptors` = (da, db), the pairs' colour descriptors."""
        a = np.asarray(a, dtype=np.float32)
        b = np.asarray(b, dtype=np.float32)
        if self.uses:
            return self.pair_fn(a, b, task, _require(classifiers, self.name), descriptors)
        if self.learned:
            return _require(classifiers, self.name).score_pairs(self.name, task, a, b, descriptors)
        return self.pair_fn(a, b)


_METHODS: dict[str, SimilarityMethod] = {}


def register_method(name: str, label: str, pair_fn: PairFn, learned: bool = False) -> Callable[[MatrixFn], MatrixFn]:
    """Decorator adding a gallery-scoring function to the registry under `name`."""

    def wrap(fn: MatrixFn) -> MatrixFn:
        if name in _METHODS:
            raise ValueError(f"similarity method {name!r} is already registered")
        _METHODS[name] = SimilarityMethod(name, label, learned, fn, pair_fn)
        return fn

    return wrap


def get_method(name: str) -> SimilarityMethod:
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(f"unknown similarity method {name!r}; available: {', '.join(_METHODS)}") from None


def resolve_method(name_or_label: str, allowed: Optional[list[str]] = None) -> str:
    """A method's registry name from its name or its label, case-insensitive ("Cosine similarity" -> "cosine")."""
    key = str(name_or_label or "").strip().lower()
    names = allowed if allowed is not None else list(_METHODS)
    for name in names:
        if key in (name.lower(), _METHODS[name].label.lower()):
            return name
    choices = ", ".join(f"{n!r} ({_METHODS[n].label})" for n in names)
    raise ValueError(f"Unknown or unavailable method {name_or_label!r}; choose one of {choices}.")


def list_methods() -> list[str]:
    return list(_METHODS)


def _require(classifiers: Optional[ClassifierSet], name: str) -> ClassifierSet:
    if classifiers is None:
        raise ValueError(f"method {name!r} is a learned classifier: load classifiers first")
    return classifiers


def _cosine_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", l2_normalize(a), l2_normalize(b))


def _inverse_euclidean_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.linalg.norm(a - b, axis=1))


@register_method("cosine", "Cosine similarity", _cosine_pairs)
def cosine(queries: np.ndarray, index: EmbeddingIndex) -> np.ndarray:
    """Cosine similarity: one matrix product, scaled by the gallery's cached inverse norms."""
    return (l2_normalize(queries) @ index.vectors.T) * index.inv_norms[None, :]


@register_method("euclidean", "Inverse Euclidean distance", _inverse_euclidean_pairs)
def inverse_euclidean(queries: np.ndarray, index: EmbeddingIndex) -> np.ndarray:
    """1 / (1 + ||q - g||), with ||q - g||^2 = |q|^2 + |g|^2 - 2 q.g as one matrix product."""
    q_sq = np.einsum("ij,ij->i", queries, queries)[:, None]
    d2 = q_sq + index.sq_norms[None, :] - 2.0 * (queries @ index.vectors.T)
    return 1.0 / (1.0 + np.sqrt(np.maximum(d2, 0.0)))


for _kind in CLASSIFIER_KINDS.values():  # one learned method per registered classifier kind
    _METHODS[_kind.name] = SimilarityMethod(_kind.name, _kind.label, True, None, None)

_METHODS["hybrid"] = SimilarityMethod(
    "hybrid", "Hybrid: class, then visual similarity", True, hybrid.hybrid_scores, hybrid.hybrid_pairs, hybrid.REQUIRES
)
