"""The hybrid's learned whitening fitted on a gallery's photos and edited copies of them, added to a classifier
folder (its manifest lists it). With `split_from`, only the training images of that folder's split are used."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from cbir.embed.spec import EmbeddingSpec
from cbir.gallery.dataset import Gallery
from cbir.hub import fetch_file
from cbir.search.loading import extractor_for
from cbir.similarity.classifiers import MANIFEST, PAIRS_FILE, ClassifierSet
from cbir.similarity.pairs import load_pairs
from cbir.similarity.training import fit_gallery_whitening
from cbir.similarity.whitening import DEFAULT_DIM, WHITENING_FILE


def training_rows(gallery: Gallery, split_from: Optional[str | os.PathLike]) -> np.ndarray:
    """Every row, or the training rows of the split in `split_from`'s pairs file (checked against the gallery)."""
    if not split_from:
        return np.arange(len(gallery))
    _, split, meta = load_pairs(fetch_file(str(split_from), PAIRS_FILE))
    if meta.get("gallery_size") != len(gallery):
        raise ValueError(f"{split_from}'s split is of a gallery of {meta.get('gallery_size')} images, "
                         f"this one has {len(gallery)}")
    return np.asarray(split.train)


def fit_whitening_into(gallery: str | os.PathLike, into: str | os.PathLike, *, split_from: Optional[str | os.PathLike] = None,
                       dim: int = DEFAULT_DIM, device: str = "auto") -> dict[str, Any]:
    """Fit the whitening on `gallery` (its training split with `split_from`) and add it to the folder `into`."""
    g = Gallery.load(gallery)
    rows = training_rows(g, split_from)
    for clf in ClassifierSet.load(into).classifiers.values():  # the whitening must fit the classifiers' backbone
        EmbeddingSpec.from_dict(clf.card["backbone"]).check_compatible(g.spec)
    extractor, _ = extractor_for(g.spec, device=device)
    whitening = fit_gallery_whitening(g, rows, extractor, dim)
    whitening.card["source"] = str(gallery) + (" (training split)" if split_from else "")
    whitening.save(into)
    manifest_path = Path(into) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "whitening": WHITENING_FILE}, indent=2) + "\n")
    return whitening.card
