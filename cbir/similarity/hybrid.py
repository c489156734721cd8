"""The hybrid similarity: class agreement from the attribute classifiers plus visual likeness.

score = w_class * A + w_cosine * cos(q, g) + w_colour * D(q, g) + w_instance * W(q, g), where A is the attribute
method's score for the task (Bhattacharyya overlap of the class probabilities; "both" = type x colour), cos the
embedding cosine, D the colour descriptors' Bhattacharyya coefficient and W the cosine of the learned-whitened
embeddings (cbir.similarity.whitening: high for an edited copy of the same photo, low otherwise). With w_class
large, right-class items come first; within a class (A ~ 1 for all) the visual terms order them, so the scores
do not saturate and an edited copy of a gallery photo finds that photo. Each task has its own weights, chosen on
validation data (scripts/tune_hybrid.py, docs/quality.md). Every term is one (Q, N) matrix product.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from cbir.index import EmbeddingIndex, l2_normalize
from cbir.similarity.classifiers import ClassifierSet
from cbir.similarity.whitening import instance_vectors

REQUIRES = ("attribute",)  # the classifier kind whose probabilities give the class term


@dataclass(frozen=True)
class HybridWeights:
    """Weights of the class, embedding-cosine, colour-descriptor and whitened-instance terms (they sum to 1)."""

    w_class: float = 0.75
    w_cosine: float = 0.2
    w_colour: float = 0.05
    w_instance: float = 0.0

    def __post_init__(self) -> None:
        w = (self.w_class, self.w_cosine, self.w_colour, self.w_instance)
        if min(w) < 0 or not np.isclose(sum(w), 1.0):
            raise ValueError(f"hybrid weights must be >= 0 and sum to 1, got {w}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# Per task, chosen on the Apparel validation split (scripts/tune_hybrid.py; results/hybrid-tuning.json): near the
# best instance recall, the weights that put a class's look-alikes (same colour for type) first. The fallback for a
# classifier folder whose manifest has no tuned "hybrid_weights" setting (folders written before it existed).
DEFAULT_WEIGHTS: dict[str, HybridWeights] = {
    "type": HybridWeights(0.7, 0.0, 0.1, 0.2),
    "colour": HybridWeights(0.6, 0.1, 0.05, 0.25),
    "both": HybridWeights(0.55, 0.0, 0.05, 0.4),
}


SETTING = "hybrid_weights"  # the classifier manifest's setting: {task: {w_class, w_cosine, w_colour, w_instance}}


def weights_for(task: str, weights: Optional[HybridWeights] = None,
                classifiers: Optional[ClassifierSet] = None) -> HybridWeights:
    """The given weights, else those tuned for the classifiers (their manifest's setting), else the task's defaults."""
    if weights is not None:
        return weights
    tuned = (classifiers.settings.get(SETTING, {}) if classifiers is not None else {}).get(task)
    if tuned:
        return HybridWeights(**tuned)
    try:
        return DEFAULT_WEIGHTS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; expected one of {tuple(DEFAULT_WEIGHTS)}") from None


def gallery_instance_vectors(index: EmbeddingIndex, classifiers: ClassifierSet) -> np.ndarray:
    """The gallery's whitened unit vectors, computed once per index and whitening (cached with it, so its id stays its own)."""
    w = classifiers.whitening
    return index.derived(("instance", id(w)), lambda v: (w, instance_vectors(w, v)))[1]


def hybrid_scores(
    queries: np.ndarray,
    index: EmbeddingIndex,
    task: str,
    classifiers: ClassifierSet,
    query_descriptors: Optional[np.ndarray] = None,
    weights: Optional[HybridWeights] = None,
) -> np.ndarray:
    """(Q, N) hybrid scores of query embeddings (+ colour descriptors) against the whole gallery."""
    q = np.asarray(queries, dtype=np.float32)
    weights = weights_for(task, weights, classifiers)
    out = weights.w_class * classifiers.score("attribute", task, q, index, query_descriptors)
    out += weights.w_cosine * ((l2_normalize(q) @ index.vectors.T) * index.inv_norms[None, :])
    if weights.w_colour and index.descriptors is not None and query_descriptors is not None:
        out += weights.w_colour * (np.asarray(query_descriptors, np.float32) @ index.descriptors.T)
    if weights.w_instance:
        out += weights.w_instance * (instance_vectors(classifiers.whitening, q) @ gallery_instance_vectors(index, classifiers).T)
    return out.astype(np.float32)


def hybrid_pairs(
    a: np.ndarray,
    b: np.ndarray,
    task: str,
    classifiers: ClassifierSet,
    descriptors: Optional[tuple[np.ndarray, np.ndarray]] = None,
    weights: Optional[HybridWeights] = None,
) -> np.ndarray:
    """(P,) hybrid scores of row-aligned pairs (the same formula as hybrid_scores)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    weights = weights_for(task, weights, classifiers)
    out = weights.w_class * classifiers.score_pairs("attribute", task, a, b, descriptors)
    out += weights.w_cosine * np.einsum("ij,ij->i", l2_normalize(a), l2_normalize(b))
    if weights.w_colour and descriptors is not None:
        out += weights.w_colour * np.einsum("ij,ij->i", *(np.asarray(d, np.float32) for d in descriptors))
    if weights.w_instance:
        w = classifiers.whitening
        out += weights.w_instance * np.einsum("ij,ij->i", instance_vectors(w, a), instance_vectors(w, b))
    return out.astype(np.float32)
