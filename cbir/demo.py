"""The embedded demo gallery the app starts on: generated garment images, embedded and with classifiers.

It is built once by `scripts/make_demo.py` and committed, so the app never embeds a gallery at start-up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .data import Gallery, build_gallery, scan_image_folder
from .features import DEFAULT_MODEL, FeatureExtractor
from .synthetic import write_image_folder
from .training import train

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_GALLERY = DEMO_DIR / "gallery"
DEMO_CLASSIFIERS = DEMO_DIR / "classifiers"


def build_demo(
    out_dir: str | os.PathLike = DEMO_DIR,
    model: str = DEFAULT_MODEL,
    weights: str = "random",
    per_class: int = 5,
    size: int = 128,
    n_pairs: int = 300,
    seed: int = 0,
) -> tuple[Gallery, list[Path]]:
    """Generate `per_class` images for each of the 24 classes, embed them and train the classifiers."""
    out_dir = Path(out_dir)
    extractor = FeatureExtractor(model, weights=weights, device="cpu", seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        write_image_folder(Path(tmp) / "images", per_class=per_class, size=size, seed=seed)
        gallery, errors = build_gallery(scan_image_folder(Path(tmp) / "images"), extractor, batch_size=16)
    if errors:
        raise RuntimeError(f"generated images failed to load: {errors}")
    gallery.save(out_dir / "gallery")
    run = train(gallery, n_pairs=n_pairs, seed=seed)
    return gallery, run.save(out_dir / "classifiers")
