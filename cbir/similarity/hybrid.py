"""The hybrid similarity: class agreement from the attribute classifiers plus visual likeness.

score = w_class * A + w_cosine * cos(q, g) + w_colour * D(q, g), where A is the attribute method's score
for the task (Bhattacharyya overlap of the class probabilities; "both" = type x colour), cos the embedding
cosine and D the colour descriptors' Bhattacharyya coefficient. With w_class large, right-class items come
first; within a class (A ~ 1 for all) the visual terms order them, so the scores do not saturate and an
edited copy of a gallery photo finds that photo. The weights were chosen on validation data
(scripts/tune_hybrid.py, docs/quality.md). Every term is one (Q, N) matrix product.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from cbir.index import EmbeddingIndex, l2_normalize
from cbir.similarity.classifiers import ClassifierSet

REQUIRES = ("attribute",)  # the classifier kind whose probabilities give the class term


@dataclass(frozen=True)
class HybridWeights:
    """Weights of the class, embedding-cosine and colour-descriptor terms (they sum to 1)."""

    w_class: float = 0.75
    w_cosine: float = 0.2
    w_colour: float = 0.05

    def __post_init__(self) -> None:
        w = (self.w_class, self.w_cosine, self.w_colour)
        if min(w) < 0 or not np.isclose(sum(w), 1.0):
            raise ValueError(f"hybrid weights must be >= 0 and sum to 1, got {w}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# Chosen on the Apparel validation split (scripts/tune_hybrid.py; results/hybrid-tuning.json).
DEFAULT_WEIGHTS = HybridWeights()


def hybrid_scores(
    queries: np.ndarray,
    index: EmbeddingIndex,
    task: str,
    classifiers: ClassifierSet,
    query_descriptors: Optional[np.ndarray] = None,
    weights: HybridWeights = DEFAULT_WEIGHTS,
) -> np.ndarray:
    """(Q, N) hybrid scores of query embeddings (+ colour descriptors) against the whole gallery."""
    q = np.asarray(queries, dtype=np.float32)
    out = weights.w_class * classifiers.score("attribute", task, q, index, query_descriptors)
    out += weights.w_cosine * ((l2_normalize(q) @ index.vectors.T) * index.inv_norms[None, :])
    if weights.w_colour and index.descriptors is not None and query_descriptors is not None:
        out += weights.w_colour * (np.asarray(query_descriptors, np.float32) @ index.descriptors.T)
    return out.astype(np.float32)


def hybrid_pairs(
    a: np.ndarray,
    b: np.ndarray,
    task: str,
    classifiers: ClassifierSet,
    descriptors: Optional[tuple[np.ndarray, np.ndarray]] = None,
    weights: HybridWeights = DEFAULT_WEIGHTS,
) -> np.ndarray:
    """(P,) hybrid scores of row-aligned pairs (the same formula as hybrid_scores)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    out = weights.w_class * classifiers.score_pairs("attribute", task, a, b, descriptors)
    out += weights.w_cosine * np.einsum("ij,ij->i", l2_normalize(a), l2_normalize(b))
    if weights.w_colour and descriptors is not None:
        out += weights.w_colour * np.einsum("ij,ij->i", *(np.asarray(d, np.float32) for d in descriptors))
    return out.astype(np.float32)
