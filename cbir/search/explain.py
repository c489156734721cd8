"""Why did this match? A similarity heat-map over each image of a pair, from the backbone's last feature map.

Each location of one image's last feature map (timm `forward_features`, (C, H, W) for CNNs) is scored by
cosine against the other image's pooled (spatial mean) feature map, then upsampled and overlaid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from cbir.images import load_image

OVERLAY_ALPHA = 0.5
# A perceptual blue -> yellow -> red ramp (anchors of a "turbo"-like map), interpolated in numpy.
_RAMP = np.array(
    [[48, 18, 59], [70, 107, 227], [40, 187, 236], [49, 242, 153], [162, 252, 60], [237, 208, 58],
     [251, 128, 34], [208, 47, 5], [122, 4, 3]], dtype=np.float32,
)  # fmt: skip


def location_similarity(fmap: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(H, W) cosine between each location's (C,) vector of a (C, H, W) feature map and a (C,) target."""
    c = fmap.shape[0]
    flat = fmap.reshape(c, -1).astype(np.float32)
    flat = flat / np.maximum(np.linalg.norm(flat, axis=0, keepdims=True), 1e-12)
    t = np.asarray(target, dtype=np.float32)
    t = t / max(float(np.linalg.norm(t)), 1e-12)
    return (t @ flat).reshape(fmap.shape[1:])


def pooled(fmap: np.ndarray) -> np.ndarray:
    """(C,) spatial mean of a (C, H, W) feature map: the embedding the heat-map of the other image is scored against."""
    return fmap.reshape(fmap.shape[0], -1).mean(axis=1)


def colourise(heat: np.ndarray) -> np.ndarray:
    """(H, W) heat in any range -> (H, W, 3) uint8, min-max scaled onto the colour ramp."""
    lo, hi = float(heat.min()), float(heat.max())
    x = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    pos = x * (len(_RAMP) - 1)
    i = np.clip(np.floor(pos).astype(int), 0, len(_RAMP) - 2)
    f = (pos - i)[..., None]
    return np.round(_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).astype(np.uint8)


def overlay(image: Image.Image, heat: np.ndarray, alpha: float = OVERLAY_ALPHA) -> Image.Image:
    """The heat-map upsampled (bilinear) to the image's size and blended over it."""
    colour = Image.fromarray(colourise(heat)).resize(image.size, Image.Resampling.BILINEAR)
    return Image.blend(image.convert("RGB"), colour, alpha)


def model_view(transform: Any, image: Image.Image) -> Image.Image:
    """The image as the model sees it (timm's resize and centre crop or border pad, before tensor conversion)."""
    if hasattr(transform, "view"):  # cbir.embed.preprocess.CentreCropTransform or BorderTransform
        return transform.view(image)
    for step in getattr(transform, "transforms", []):
        if "Tensor" in type(step).__name__:
            break
        image = step(image)
    return image


@dataclass(frozen=True)
class Explanation:
    """Heat-maps (feature-map resolution) and overlays (model-view resolution) for images a and b."""

    heat_a: np.ndarray
    heat_b: np.ndarray
    overlay_a: Image.Image
    overlay_b: Image.Image


@torch.inference_mode()
def feature_maps(extractor: Any, images: list[Image.Image]) -> np.ndarray:
    """(B, C, H, W) last feature maps of the extractor's timm model (`forward_features`)."""
    batch = torch.stack([extractor.preprocess(im) for im in images]).to(extractor.device)
    out = extractor.model.forward_features(batch)
    if out.ndim != 4:
        raise ValueError(f"heat-maps need a CNN feature map (B, C, H, W); {type(extractor.model).__name__} gives {tuple(out.shape)}")
    return out.float().cpu().numpy()


def explain_pair(extractor: Any, image_a: Any, image_b: Any) -> Explanation:
    """Heat-maps of a against b's pooled features and of b against a's, with their overlays."""
    a, b = load_image(image_a), load_image(image_b)
    fa, fb = feature_maps(extractor, [a, b])
    heat_a, heat_b = location_similarity(fa, pooled(fb)), location_similarity(fb, pooled(fa))
    view_a, view_b = model_view(extractor.transform, a), model_view(extractor.transform, b)
    return Explanation(heat_a, heat_b, overlay(view_a, heat_a), overlay(view_b, heat_b))
