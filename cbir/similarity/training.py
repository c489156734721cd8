"""Training run: image split -> balanced pairs per task -> one classifier per (kind, task)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tqdm.auto import tqdm

from cbir.similarity.classifiers import CLASSIFIER_KINDS, PAIRS_FILE, ClassifierSet, PairClassifier, classifier_class, get_kind
from cbir.gallery.dataset import Gallery
from cbir.embed.spec import EmbeddingSpec
from cbir.similarity.evaluation import correlations
from cbir.gallery.labels import TASKS
from cbir.similarity.instance import instance_queries
from cbir.similarity.whitening import COPY_SEED, DEFAULT_DIM, Whitening, fit_whitening
from cbir.similarity.pairs import DEFAULT_PAIRS_PER_TASK, check_class_sizes, DEFAULT_TEST_FRACTION, ImageSplit, Pairs, build_task_pairs, save_pairs, split_images


@dataclass
class TrainingRun:
    """What a training run produced: classifiers, the pairs they saw and held out, and the image split."""

    classifiers: ClassifierSet
    pairs: dict[str, dict[str, Pairs]]
    split: ImageSplit
    meta: dict

    def save(self, folder: str | os.PathLike) -> list[Path]:
        folder = Path(folder)
        written = self.classifiers.save(folder)
        save_pairs(folder / PAIRS_FILE, self.pairs, self.split, self.meta)
        return written + [folder / PAIRS_FILE]


def split_and_pair(
    labels: np.ndarray,
    hashes: Optional[np.ndarray],
    attributes: dict[str, np.ndarray],
    n_pairs: int = DEFAULT_PAIRS_PER_TASK,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
) -> tuple[ImageSplit, dict[str, dict[str, Pairs]]]:
    """De-duplicated stratified image split, then train/test pairs per task inside each side (refused, naming it,
    when a class is too small to train on: cbir.similarity.pairs.check_class_sizes)."""
    check_class_sizes(labels, hashes)
    split = split_images(labels, hashes, test_fraction=test_fraction, seed=seed)
    return split, build_task_pairs(attributes, split, n_pairs=n_pairs, seed=seed)


def labelled_tasks(gallery: Gallery) -> tuple[str, ...]:
    """The tasks every image has a label for; a task predicted for some images (cbir.similarity.predicted) is not one:
    training on predictions would learn the shipped models back."""
    return tuple(t for t in gallery.tasks if t not in gallery.probabilities
                 or not np.isfinite(gallery.probabilities[t]).any())


def pair_counts(pairs: dict[str, dict[str, Pairs]]) -> dict[str, int]:
    """Pairs drawn per task (train + test): fewer than asked when the gallery allows fewer."""
    return {task: sum(len(p) for p in parts.values()) for task, parts in pairs.items()}


def make_pairs(
    gallery: Gallery,
    n_pairs: int = DEFAULT_PAIRS_PER_TASK,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    tasks: Optional[Sequence[str]] = None,
) -> tuple[ImageSplit, dict[str, dict[str, Pairs]]]:
    """split_and_pair on a gallery's labels, hashes and task attributes (default: every task its labels give)."""
    tasks = labelled_tasks(gallery) if tasks is None else tasks
    gallery.require_tasks(tasks)
    attributes = {t: gallery.attribute(t) for t in tasks}
    return split_and_pair(gallery.labels, gallery.hashes, attributes, n_pairs, test_fraction, seed)


def fit_classifiers(
    embeddings: np.ndarray,
    pairs: dict[str, dict[str, Pairs]],
    split: ImageSplit,
    spec: EmbeddingSpec,
    kinds: Sequence[str] = tuple(CLASSIFIER_KINDS),
    tasks: Sequence[str] = TASKS,
    seed: int = 0,
    progress: bool = True,
    attributes: Optional[dict[str, np.ndarray]] = None,
    descriptors: Optional[np.ndarray] = None,
    colour_spec: Optional[dict] = None,
) -> ClassifierSet:
    """One classifier per (kind, task); its card gets metrics on the test pairs.

    Pair kinds fit on the training pairs; per-image kinds (e.g. "attribute") fit on the training images'
    labels (`attributes[task]`), with the colour `descriptors` when given.
    """
    fitted = {}
    jobs = [(k, t) for k in kinds for t in tasks]
    x = embeddings
    for kind, task in tqdm(jobs, desc="training", unit="classifier", disable=not progress):
        test = pairs[task]["test"]
        if get_kind(kind).per_image:
            if attributes is None:
                raise ValueError(f"the {kind!r} classifier learns from image labels: pass attributes")
            clf = classifier_class(kind).fit(
                kind, task, x, attributes[task], split.train, spec, descriptors, colour_spec, seed=seed
            )
            d = None if descriptors is None else (descriptors[test.left], descriptors[test.right])
            proba = clf.score_pairs(x[test.left], x[test.right], descriptors=d)
        else:
            clf = PairClassifier.fit(kind, task, x, pairs[task]["train"], split.train, spec, seed=seed)
            proba = clf.score_pairs(x[test.left], x[test.right])
        clf.card["metrics"] = {
            "test_pairs": len(test),
            "accuracy": float(((proba > 0.5) == test.label.astype(bool)).mean()),
            **{k: v for k, v in correlations(proba, test.label).items() if k != "n"},
        }
        fitted[(kind, task)] = clf
    return ClassifierSet(fitted)


def train(
    gallery: Gallery,
    kinds: Sequence[str] = tuple(CLASSIFIER_KINDS),
    tasks: Optional[Sequence[str]] = None,
    n_pairs: int = DEFAULT_PAIRS_PER_TASK,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    progress: bool = True,
    extractor: Any = None,
    whitening_dim: int = DEFAULT_DIM,
) -> TrainingRun:
    """Fit every requested classifier kind for every task (default: those the labels give) on the training split;
    with the gallery's `extractor` and the attribute kind, also the hybrid's learned whitening (0 dims = none)."""
    tasks = labelled_tasks(gallery) if tasks is None else tuple(tasks)
    split, pairs = make_pairs(gallery, n_pairs, test_fraction, seed, tasks)
    attributes = {t: gallery.attribute(t) for t in tasks}
    colour_spec = None if gallery.colour_spec is None else gallery.colour_spec.to_dict()
    classifiers = fit_classifiers(
        gallery.embeddings, pairs, split, gallery.spec, kinds, tasks, seed, progress,
        attributes=attributes, descriptors=gallery.descriptors, colour_spec=colour_spec,
    )
    if extractor is not None and whitening_dim and "attribute" in kinds:
        classifiers.whitening = fit_gallery_whitening(gallery, split.train, extractor, whitening_dim, progress=progress)
    meta = {"n_pairs_per_task": n_pairs, "test_fraction": test_fraction, "seed": seed, "gallery_size": len(gallery)}
    return TrainingRun(classifiers, pairs, split, meta)


def fit_gallery_whitening(
    gallery: Gallery, rows: Sequence[int], extractor: Any, dim: int = DEFAULT_DIM, seed: int = COPY_SEED,
    progress: bool = True,
) -> Whitening:
    """Learned whitening (cbir.similarity.whitening) from gallery `rows` and their edited copies (seed `seed`)."""
    rows = np.asarray(rows)
    copies, _ = instance_queries(gallery, rows, extractor, seed=seed, descriptors=False, progress=progress)
    x = gallery.embeddings[rows]
    card = {"backbone": gallery.spec.to_dict(), "copy_seed": seed, "method": "learned whitening (Radenovic et al. 2018)"}
    return fit_whitening(x, x, copies, dim, card)
