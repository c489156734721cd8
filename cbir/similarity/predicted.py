"""The attribute models that come with a backbone (cbir.gallery.demo.SHIPPED_CLASSIFIERS) and what they predict for
a gallery's items: each unlabelled item's type and colour with its probability, stored at build time; a label from
the manifest or the folder wins where there is one."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

import datasets
import numpy as np

from cbir.embed.colour import ColourSpec
from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec
from cbir.gallery.dataset import PROBABILITY_SUFFIX, Gallery
from cbir.gallery.demo import SHIPPED_CLASSIFIERS
from cbir.gallery.labels import TASKS
from cbir.similarity.classifiers import ClassifierSet

log = logging.getLogger(__name__)


def shipped_classifiers_dir(spec: EmbeddingSpec) -> Optional[Path]:
    """The folder of the attribute models shipped with the backbone `spec` names (pretrained weights only), or None."""
    if spec.is_random:
        return None
    return SHIPPED_CLASSIFIERS.get(spec.model)


def shipped_classifiers(spec: EmbeddingSpec, colour_spec: Optional[ColourSpec]) -> Optional[ClassifierSet]:
    """The shipped attribute models of a gallery's backbone when they fit its embeddings and colour descriptor
    (else None, logged: e.g. a gallery built with another colour weighting)."""
    folder = shipped_classifiers_dir(spec)
    if folder is None or not (folder / "classifiers.json").is_file():
        return None
    clf = ClassifierSet.load(folder)
    try:
        clf.check_backbone(spec, colour_spec)
    except BackboneMismatchError as e:
        log.warning("the attribute models shipped with %s do not fit this gallery: %s", spec.model, e)
        return None
    return clf


class Annotator:
    """Adds each item's predicted `type` and `colour` (where it has no label) and a `<task>_probability` column
    (None where the value is a label) to a gallery shard, with the attribute classifiers of `classifiers`."""

    def __init__(self, classifiers: ClassifierSet, source: str | os.PathLike) -> None:
        self.classifiers = classifiers
        self.tag = f"predicted by {source}"  # part of a resumable build's settings
        self.tasks = [t for t in TASKS if ("attribute", t) in classifiers]

    def __call__(self, gallery: Gallery) -> Gallery:
        ds = gallery.dataset
        for task in self.tasks:
            clf = self.classifiers.get("attribute", task)
            if clf.uses_colour and gallery.descriptors is None:
                continue
            p = clf.probabilities(gallery.embeddings, gallery.descriptors if clf.uses_colour else None)
            best = np.argmax(p, axis=1) if len(p) else np.zeros(0, np.int64)
            given = gallery.attribute(task)
            labelled = np.array([v is not None and v != "" for v in given], dtype=bool)
            values = [str(v) if ok else str(clf.classes[b]) for v, ok, b in zip(given, labelled, best)]
            probs = [None if ok else float(p[i, b]) for i, (ok, b) in enumerate(zip(labelled, best))]
            ds = ds.remove_columns([c for c in (task, task + PROBABILITY_SUFFIX) if c in ds.column_names])
            ds = ds.add_column(task, values, feature=datasets.Value("string"))
            ds = ds.add_column(task + PROBABILITY_SUFFIX, probs, feature=datasets.Value("float32"))
        return Gallery(ds, gallery.spec, gallery.colour_spec)


def annotator_for(gallery_spec: EmbeddingSpec, colour_spec: Optional[ColourSpec], source: Any = None
                  ) -> Optional[Annotator]:
    """An Annotator with the classifiers at `source` ("none": no annotator; None: the backbone's shipped models)."""
    if source is not None and str(source).lower() == "none":
        return None
    if source is None:
        clf, source = shipped_classifiers(gallery_spec, colour_spec), shipped_classifiers_dir(gallery_spec)
    else:
        clf = ClassifierSet.load(source)
        clf.check_backbone(gallery_spec, colour_spec)
    return None if clf is None or not any(("attribute", t) in clf for t in TASKS) else Annotator(clf, source)
