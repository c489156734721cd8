"""Where the embedded demo lives: the gallery the app starts on (CC0 clothing photos, Lite2 embeddings) and its
classifiers, committed under demo/ and built by `scripts/make_demo.py` with the demo's backbone."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "demo"
DEMO_GALLERY = DEMO_DIR / "gallery"
DEMO_CLASSIFIERS = DEMO_DIR / "classifiers"
HOLDOUT_FILE = "holdout.json"
DEMO_MODEL = "tf_efficientnet_lite2_clothing_v2"  # Lite2, last two stages fine-tuned on whole clothing photos (docs/quality.md)
CC0_SOURCE = "clothing dataset by Alexey Grigorev (github.com/alexeygrigorev/clothing-dataset), CC0 1.0"


def calibration_photos(n: int) -> list[Any]:
    """`n` photos spread evenly over the committed demo gallery, decoded to RGB: every machine calibrates an int8
    backbone (cbir.embed.quantize) on the same photos."""
    from PIL import Image

    from cbir.gallery.dataset import Gallery

    g = Gallery.load(DEMO_GALLERY)
    rows = np.linspace(0, len(g) - 1, min(n, len(g))).round().astype(int)
    return [Image.open(io.BytesIO(g.image_bytes(int(i))[0])).convert("RGB") for i in rows]

# The attribute models (type, colour) and hybrid whitening that come with a backbone: a gallery embedded with it is
# served with them when no --classifiers is given (cbir.similarity.predicted.shipped_classifiers).
SHIPPED_CLASSIFIERS = {DEMO_MODEL: DEMO_CLASSIFIERS}
