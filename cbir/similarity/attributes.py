"""Attribute-probability similarity: one per-image classifier per task; a pair scores by how its two
class-probability vectors overlap.

A per-image classifier learns from every labelled training image (8,000 on Apparel) rather than from a
few thousand pairs, and the colour descriptor (cbir.embed.colour) gives it what ImageNet features lack.
Each image maps to a vector v(p) of its class probabilities p, and the pair score is v(p_a) . v(p_b):
the gallery's vectors are computed once, so a query is one (Q, C) x (C, N) product, and a vector store
can serve the method as an inner-product search over `image_vectors`.
"""

from __future__ import annotations

import inspect
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import skops.io as sio
from sklearn.base import clone
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cbir.embed.spec import EmbeddingSpec
from cbir.similarity.calibration import apply_temperature, temperature_of
from cbir.index import EmbeddingIndex

ATTRIBUTE_CS = (1e-3, 1e-2, 1e-1, 1.0)

VectorFn = Callable[[np.ndarray], np.ndarray]
PAIR_SCORES: dict[str, VectorFn] = {
    # P(same class) if the two predictions were independent; NOT maximal for an image against itself
    # (a confident other image beats an uncertain self), so it is kept for the ablation only.
    "dot": lambda p: p,
    # Bhattacharyya coefficient sum_c sqrt(p_a(c) p_b(c)): sqrt(p) has unit norm, so an image scores
    # exactly 1 against itself and at most 1 against anything else.
    "bhattacharyya": np.sqrt,
}
DEFAULT_PAIR_SCORE = "bhattacharyya"


def logistic_cv_kwargs() -> dict[str, Any]:
    """LogisticRegressionCV arguments that keep newer scikit-learn quiet about its L2-only transitions."""
    params = set(inspect.signature(LogisticRegressionCV).parameters)
    return {k: v for k, v in (("l1_ratios", (0.0,)), ("use_legacy_attributes", False)) if k in params}


def _make_estimator(seed: int) -> Pipeline:
    """Standardised features, multinomial logistic regression, L2 strength by 3-fold CV (log-loss)."""
    return make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(
            Cs=list(ATTRIBUTE_CS), cv=3, scoring="neg_log_loss", max_iter=1000, random_state=seed,
            **logistic_cv_kwargs(),
        ),
    )


def attribute_features(embeddings: np.ndarray, descriptors: Optional[np.ndarray], use_colour: bool) -> np.ndarray:
    """The classifier's input: the embedding, with the colour descriptor appended when the model uses it."""
    x = np.asarray(embeddings, dtype=np.float32)
    if not use_colour:
        return x
    if descriptors is None:
        raise ValueError(
            "this attribute classifier was trained with colour descriptors; the gallery/query has none "
            "(rebuild the gallery with build_index.py or add them with scripts/add_colour.py)"
        )
    return np.hstack([x, np.asarray(descriptors, dtype=np.float32)])


class CardedClassifier:
    """What every fitted classifier shares: a JSON card naming its kind and task, saved beside a skops file."""

    card: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.card["kind"]

    @property
    def task(self) -> str:
        return self.card["task"]

    def _save(self, folder: str | os.PathLike, obj: dict[str, Any]) -> tuple[Path, Path]:
        """Write `<kind>-<task>.skops` (skops, not pickle) and its JSON card."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        model_path = folder / f"{self.kind}-{self.task}.skops"
        # deflated: a 200-tree forest's node arrays shrink several-fold, which matters for the committed demo
        sio.dump(obj, model_path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
        card_path = model_path.with_suffix(".json")
        card_path.write_text(json.dumps(self.card, indent=2) + "\n")
        return model_path, card_path


class AttributeClassifier(CardedClassifier):
    """Per-image class probabilities for one task; pair score = v(p_a) . v(p_b) (see PAIR_SCORES)."""

    uses_descriptor = True
    projection = None

    def __init__(self, estimator: Pipeline, card: dict[str, Any]) -> None:
        self.estimator = estimator
        self.card = card
        self._key = uuid.uuid4().hex  # names this classifier's gallery vectors in an EmbeddingIndex

    @property
    def classes(self) -> list[str]:
        return list(self.card["classes"])

    @property
    def uses_colour(self) -> bool:
        return self.card.get("colour") is not None

    @classmethod
    def fit(
        cls,
        kind: str,
        task: str,
        embeddings: np.ndarray,
        values: np.ndarray,
        train_images: np.ndarray,
        spec: EmbeddingSpec,
        descriptors: Optional[np.ndarray] = None,
        colour_spec: Optional[dict[str, Any]] = None,
        seed: int = 0,
        pair_score: str = DEFAULT_PAIR_SCORE,
    ) -> "AttributeClassifier":
        """Fit on the training images' labels for `task`; colour descriptors are used when given."""
        if pair_score not in PAIR_SCORES:
            raise ValueError(f"unknown pair score {pair_score!r}; available: {', '.join(PAIR_SCORES)}")
        train_images = np.asarray(train_images)
        y_text = np.asarray(values).astype(str)[train_images]
        classes, y = np.unique(y_text, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"task {task!r} needs at least two classes among the training images, found {list(classes)}")
        use_colour = descriptors is not None
        x = attribute_features(embeddings, descriptors, use_colour)[train_images]
        estimator = _make_estimator(seed).fit(x, y)
        lr = estimator.steps[-1][1]
        card = {
            "kind": kind,
            "task": task,
            "estimator": type(lr).__name__,
            "hyperparameters": {"C": float(np.ravel(lr.C_)[0]), "Cs": list(ATTRIBUTE_CS)},
            "pair_score": pair_score,
            "inputs": "embedding+colour" if use_colour else "embedding",
            "colour": (colour_spec or {"dim": int(np.shape(descriptors)[1])}) if use_colour else None,
            "classes": [str(c) for c in classes],
            "backbone": spec.to_dict(),
            "train_images": int(len(train_images)),
            "seed": seed,
            "metrics": {},
        }
        return cls(estimator, card)

    @property
    def temperature(self) -> float:
        """The card's calibration temperature (cbir.similarity.calibration; 1.0 for folders fitted before it)."""
        return temperature_of(self.card)

    def probabilities(
        self, embeddings: np.ndarray, descriptors: Optional[np.ndarray] = None, calibrated: bool = True
    ) -> np.ndarray:
        """(N, C) class probabilities, columns in the order of `classes`; `calibrated` applies the card's temperature
        (what a shown confidence and the hedged ranking read), else the estimator's own."""
        x = attribute_features(embeddings, descriptors, self.uses_colour)
        p = self.estimator.predict_proba(x).astype(np.float32)
        return apply_temperature(p, self.temperature) if calibrated else p

    def image_vectors(self, embeddings: np.ndarray, descriptors: Optional[np.ndarray] = None) -> np.ndarray:
        """(N, C) per-image vectors whose inner product is the pair score (what a vector store indexes); from the
        estimator's own probabilities, which the hybrid's weights were tuned on."""
        p = self.probabilities(embeddings, descriptors, calibrated=False)
        return PAIR_SCORES[self.card["pair_score"]](p).astype(np.float32)

    def score(
        self, queries: np.ndarray, index: EmbeddingIndex, query_descriptors: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """Scores of every query against every gallery image, (Q, N): one matrix product."""
        gallery = index.derived((self._key, "vectors"), lambda v: self.image_vectors(v, index.descriptors))
        return self.image_vectors(queries, query_descriptors) @ gallery.T

    def score_pairs(
        self, a: np.ndarray, b: np.ndarray, descriptors: Optional[tuple[np.ndarray, np.ndarray]] = None
    ) -> np.ndarray:
        """Scores of row-aligned pairs, (P,)."""
        da, db = descriptors if descriptors is not None else (None, None)
        return np.einsum("ij,ij->i", self.image_vectors(a, da), self.image_vectors(b, db))

    def save(self, folder: str | os.PathLike) -> tuple[Path, Path]:
        return self._save(folder, {"estimator": self.estimator})

    @classmethod
    def load(cls, model_path: str | os.PathLike, card_path: str | os.PathLike) -> "AttributeClassifier":
        from cbir.similarity.trust import load_trusted

        return cls(load_trusted(model_path)["estimator"], json.loads(Path(card_path).read_text()))


Labelled = tuple[np.ndarray, Optional[np.ndarray], np.ndarray]  # (embeddings, colour descriptors or None, labels)


def refit_probabilities(
    classifier: AttributeClassifier, fit: Labelled, validation: Labelled
) -> tuple[AttributeClassifier, np.ndarray, np.ndarray]:
    """The attribute classifier's recipe (a clone of its estimator, the same inputs) refitted on `fit`, and its
    uncalibrated probabilities and true columns on `validation`: what a temperature is fitted on when the served
    model has seen every training photo. Validation labels the refit never saw are dropped."""
    x, d, y = fit
    y = np.asarray(y).astype(str)
    classes = np.unique(y)
    est = clone(classifier.estimator).fit(attribute_features(x, d, classifier.uses_colour), np.searchsorted(classes, y))
    refit = AttributeClassifier(est, {**classifier.card, "classes": [str(c) for c in classes], "train_images": len(y)})
    vx, vd, vy = validation
    vy = np.asarray(vy).astype(str)
    known = np.isin(vy, classes)
    probs = refit.probabilities(vx[known], None if vd is None else vd[known], calibrated=False)
    return refit, probs, np.searchsorted(classes, vy[known])
