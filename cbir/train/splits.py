"""The sources' splits every training step shares, so that a test photo stays a test photo from the backbone's
adaptation to the attribute models: a de-duplicated stratified test cut per source, then a validation cut of each
training part for choosing settings. Works on galleries and on PhotoSets alike (labels and hashes)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from cbir.similarity.pairs import split_images

SHARED_TYPES = ("dress", "pants", "shoes", "shorts")  # types Apparel/catalogue name as CC0 does
TOPS = ("longsleeve", "shirt", "tshirt")  # what an Apparel/catalogue `shirt` may be in CC0's types
# held-out share of clothing-cc0-train, catalogue-dev, Apparel and clothing-cc0-more
TEST_FRACTIONS = {"cc0": 0.3, "catalogue": 0.4, "apparel": 0.3, "more": 0.3}
VALIDATION_FRACTION = 0.2  # of each training part, for choosing


def split(photos: Any, test_fraction: float, seed: int = 0,
          rows: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """The de-duplicated stratified split train_classifiers.py makes, of `rows` (default: every photo)."""
    rows = np.arange(len(photos)) if rows is None else rows
    s = split_images(photos.labels[rows], photos.hashes[rows], test_fraction=test_fraction, seed=seed)
    return rows[s.train], rows[s.test]


def source_splits(sources: dict[str, Any], seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(train, test) rows of each source present; Apparel's is train_classifiers.py's split (seed 0)."""
    return {k: split(sources[k], f, seed if k != "apparel" else 0) for k, f in TEST_FRACTIONS.items() if k in sources}


def fit_validation_splits(sources: dict[str, Any], train: dict[str, np.ndarray],
                          seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(fit, validation) rows: each source's training rows split again; the test photos are not touched."""
    return {k: split(sources[k], VALIDATION_FRACTION, seed, rows) for k, rows in train.items()}
