"""Hedging a ranking when the query's class is uncertain: one wrong guess must not spoil the whole list.

The hybrid's class term puts every item of the guessed class before any other, so a wrong guess makes the whole
list wrong. When the query's top class probability (calibrated: cbir.similarity.calibration) is under
`certain`, the list interleaves the likely classes (probability >= `floor`) in proportion to their probability,
each class in its own order of the method's score (visual likeness inside a class): the j-th item of class c
gets the key (j + offset) / p_c and the list follows the keys (a divisor method of apportionment: offset 1 is
D'Hondt, 0.5 Sainte-Lague; smaller offsets give a runner-up class its first slot earlier). Items of the other
classes follow, in score order. The first result stays the method's own first (for the hybrid, the likeliest class's
best match, or an edited copy's very photo, whichever scores higher), so P@1 and instance recall are the method's.
When certain, nothing changes.
Pure numpy, vectorised over queries; the settings are data (HedgeSettings, stored in the classifier's card).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Mapping, Optional

import numpy as np

if TYPE_CHECKING:  # the glue at the bottom reads a ClassifierSet and an EmbeddingIndex; the core is pure numpy
    from cbir.index import EmbeddingIndex
    from cbir.similarity.classifiers import ClassifierSet

CARD_KEY = "hedge"  # attribute-<task>.json's card[CARD_KEY]: the settings chosen on validation
STEP = 1e-6  # hedged scores fall by at least this much per rank, so the hedged order is the score order


@dataclass(frozen=True)
class HedgeSettings:
    """`certain`: top probability at or above which the ranking is left alone (0: never hedge); `floor`: the
    probability a class needs to get slots; `offset`: the divisor method's offset (see module docstring)."""

    certain: float = 0.9
    floor: float = 0.1
    offset: float = 0.5

    def __post_init__(self) -> None:
        if not (0 < self.floor <= 1 and self.certain >= 0 and 0 < self.offset <= 3):
            raise ValueError(f"hedge settings out of range: {self}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> "HedgeSettings":
        """The card's settings (defaults for the keys it lacks: folders written before hedging)."""
        saved = card.get(CARD_KEY) or {}
        return cls(**{f.name: float(saved[f.name]) for f in fields(cls) if f.name in saved})


NEVER = HedgeSettings(certain=0.0)  # the plain ranking


def hedge_keys(scores: np.ndarray, query_probs: np.ndarray, gallery_class: np.ndarray,
               settings: HedgeSettings = HedgeSettings()) -> np.ndarray:
    """(Q, N) ordering keys, smaller first: (j + offset) / p_c for the j-th item (by score) of a likely class c,
    +inf for the rest, -inf for the first by score; rows of certain queries are all +inf (the score order)."""
    s = np.asarray(scores, np.float64)
    p = np.asarray(query_probs, np.float64)
    g = np.asarray(gallery_class, np.int64)
    q, n = s.shape
    order = np.argsort(-s, axis=1, kind="stable")
    cls_sorted = g[order]  # (Q, N) class of each item, in score order
    keys_sorted = np.full((q, n), np.inf)
    hedged = p.max(axis=1) < settings.certain
    for c in range(p.shape[1]):
        member = cls_sorted == c
        j = np.cumsum(member, axis=1) - 1  # rank of the item inside its class
        pc = p[:, c:c + 1]
        use = member & hedged[:, None] & (pc >= settings.floor)
        keys_sorted = np.where(use, (j + settings.offset) / np.maximum(pc, 1e-12), keys_sorted)
    keys_sorted[:, 0] = np.where(hedged, -np.inf, keys_sorted[:, 0])  # the method's first result stays first
    keys = np.empty_like(keys_sorted)
    np.put_along_axis(keys, order, keys_sorted, axis=1)
    return keys


def hedge(scores: np.ndarray, query_probs: np.ndarray, gallery_class: np.ndarray,
          settings: HedgeSettings = HedgeSettings()) -> np.ndarray:
    """(Q, N) scores whose order is the hedged order: each item keeps its score unless a lower-scored item was moved
    above it, then it gets just under that item's (a running minimum down the hedged list, STEP apart).
    Rows of certain queries come back unchanged."""
    s = np.asarray(scores, np.float64)
    keys = hedge_keys(s, query_probs, gallery_class, settings)
    out = s.copy()
    rows = np.flatnonzero(np.isfinite(keys).any(axis=1) | np.isneginf(keys).any(axis=1))
    if not len(rows):
        return np.asarray(scores, np.float32)
    sub = s[rows]
    order = _order(keys[rows], sub)
    ranked = np.take_along_axis(sub, order, axis=1)
    finite = np.isfinite(ranked)
    steps = np.arange(ranked.shape[1]) * STEP
    lifted = np.where(finite, ranked + steps, np.inf)  # -inf (masked) items stay last and unchanged
    running = np.minimum.accumulate(lifted, axis=1) - steps
    new = np.where(finite, running, ranked)
    back = np.empty_like(new)
    np.put_along_axis(back, order, new, axis=1)
    out[rows] = back
    return out.astype(np.float32)


def _order(keys: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per row: hedged items by key (ties by score), then the rest by score."""
    return np.lexsort((-scores, keys), axis=-1)


def gallery_classes(gallery_probs: np.ndarray) -> np.ndarray:
    """(N,) each gallery item's class: its classifier's likeliest (the gallery needs no labels)."""
    return np.asarray(gallery_probs).argmax(axis=1)


def maybe_hedge(scores: np.ndarray, query_probs: Optional[np.ndarray], gallery_probs: Optional[np.ndarray],
                settings: HedgeSettings) -> np.ndarray:
    """`hedge` when both probabilities are known, else the scores as they are."""
    if query_probs is None or gallery_probs is None:
        return np.asarray(scores, np.float32)
    return hedge(scores, query_probs, gallery_classes(gallery_probs), settings)


HEDGED_METHODS = ("hybrid",)  # methods whose ranking is hedged (their class term is what makes a list all-or-nothing)
HEDGED_TASKS = ("type", "colour")  # "both" is left as it is


def hedged_scores(method: str, scores: np.ndarray, queries: np.ndarray, index: "EmbeddingIndex", task: str,
                  classifiers: Optional["ClassifierSet"], query_descriptors: Optional[np.ndarray] = None,
                  settings: Optional[HedgeSettings] = None) -> np.ndarray:
    """A method's (Q, N) scores hedged by the task's calibrated attribute probabilities (the engine's default ranking);
    unchanged for other methods and tasks, or without the classifier. `settings`: the classifier card's, by default."""
    if method not in HEDGED_METHODS or task not in HEDGED_TASKS or classifiers is None \
            or ("attribute", task) not in classifiers:
        return scores
    clf = classifiers.get("attribute", task)
    if clf.uses_colour and (query_descriptors is None or index.descriptors is None):
        return scores
    settings = HedgeSettings.from_card(clf.card) if settings is None else settings
    if settings.certain <= 0:
        return scores
    gallery = index.derived((clf._key, "classes"), lambda v: gallery_classes(clf.probabilities(v, index.descriptors)))
    qd = None if query_descriptors is None else np.atleast_2d(query_descriptors)
    return hedge(scores, clf.probabilities(np.atleast_2d(queries), qd), gallery, settings)
