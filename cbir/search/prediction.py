"""What a query photo is: its garment type and colour as the gallery's attribute classifiers predict them."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from cbir.gallery.labels import TASKS
from cbir.similarity.classifiers import ClassifierSet

Prediction = dict[str, dict[str, Any]]


def needs_descriptor(classifiers: Optional[ClassifierSet]) -> bool:
    """Whether a prediction reads the photo's colour descriptor (an attribute classifier trained with it)."""
    return classifiers is not None and any(
        ("attribute", t) in classifiers and classifiers.get("attribute", t).uses_colour for t in TASKS
    )


def predict_attributes(
    classifiers: Optional[ClassifierSet], vector: np.ndarray, descriptor: Optional[np.ndarray] = None
) -> Prediction:
    """{task: {"value", "probability", "probabilities": {class: p}}} for "type" and "colour" where the attribute
    classifiers are loaded ({} without them; a colour-aware task is left out without a descriptor)."""
    out: Prediction = {}
    for task in TASKS:
        if classifiers is None or ("attribute", task) not in classifiers:
            continue
        clf = classifiers.get("attribute", task)
        if clf.uses_colour and descriptor is None:
            continue
        d = None if descriptor is None else np.atleast_2d(descriptor)
        p = clf.probabilities(np.atleast_2d(vector), d)[0]
        best = int(np.argmax(p))
        probs = {c: round(float(x), 4) for c, x in zip(clf.classes, p)}
        out[task] = {"value": clf.classes[best], "probability": round(float(p[best]), 4), "probabilities": probs}
    return out
