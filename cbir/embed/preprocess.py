"""timm's eval transforms (resize, centre crop or border pad, scale to [0, 1], normalise), bit for bit, in numpy.

torch's tensor ops run on its OpenMP pool; next to OpenVINO's or ONNX Runtime's own threads that pool waited
for a starved thread and one upload's preprocessing took 48 ms instead of 4 (benchmarks/throughput.py). The same
PIL resize and crop as torchvision, then the same float32 operations in numpy, never touch that pool.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

RESAMPLE = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "lanczos": Image.LANCZOS}


class CentreCropTransform:
    """The eval transform of a timm data config with crop_mode "center" (every timm backbone registered here)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        _, self.height, self.width = (int(v) for v in cfg["input_size"])
        self.scale_size = math.floor(min(self.height, self.width) / float(cfg["crop_pct"]))  # timm's rule
        self.resample = RESAMPLE[cfg["interpolation"]]
        self.mean = np.asarray(cfg["mean"], dtype=np.float32)[:, None, None]
        self.std = np.asarray(cfg["std"], dtype=np.float32)[:, None, None]
        # ToTensor + Normalize of every uint8 value, per channel: the same float32 operations, looked up (5x faster)
        self.lut = (np.arange(256, dtype=np.float32)[None, :] / np.float32(255) - self.mean[:, :, 0]) / self.std[:, :, 0]

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """torchvision's Resize(int): the shorter side becomes scale_size, the longer keeps the aspect (truncated)."""
        if width <= height:
            return self.scale_size, int(self.scale_size * height / width)
        return int(self.scale_size * width / height), self.scale_size

    def view(self, image: Image.Image) -> Image.Image:
        """The image as the model sees it: resized, padded if the mode pads, centre-cropped; before scaling (explain's frame)."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        w, h = self.resized_size(*image.size)
        if (w, h) != image.size:
            image = image.resize((w, h), self.resample)
        image = self.pad(image)
        w, h = image.size
        top, left = int(round((h - self.height) / 2.0)), int(round((w - self.width) / 2.0))  # torchvision CenterCrop
        return image.crop((left, top, left + self.width, top + self.height))

    def pad(self, image: Image.Image) -> Image.Image:
        """Nothing to pad: the resized image covers the crop."""
        return image

    def __call__(self, image: Image.Image) -> torch.Tensor:
        out = np.empty((3, self.height, self.width), dtype=np.float32)
        for c, band in enumerate(self.view(image).split()):  # contiguous planes, channels first as ToTensor
            np.take(self.lut[c], np.asarray(band), out=out[c])
        return torch.from_numpy(out)


class BorderTransform(CentreCropTransform):
    """timm's crop_mode "border": the longer side scaled to the input, the rest padded with the mean colour, so a
    portrait photo keeps its top and bottom (a centre crop cuts a third of a 3:4 photo's height)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.fill = tuple(round(255 * float(v)) for v in cfg["mean"])  # timm's fill

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """timm's ResizeKeepRatio(longest=1): the longer side becomes scale_size, sizes rounded."""
        ratio = max(width / self.scale_size, height / self.scale_size)
        return round(width / ratio), round(height / ratio)

    def pad(self, image: Image.Image) -> Image.Image:
        """timm's CenterCropOrPad: a side shorter than the input is padded (left/top get the smaller half)."""
        w, h = image.size
        if w >= self.width and h >= self.height:
            return image
        canvas = Image.new("RGB", (max(w, self.width), max(h, self.height)), self.fill)
        canvas.paste(image, ((self.width - w) // 2 if w < self.width else 0, (self.height - h) // 2 if h < self.height else 0))
        return canvas


NUMPY_TRANSFORMS: dict[str, type[CentreCropTransform]] = {"center": CentreCropTransform, "border": BorderTransform}


def eval_transform(cfg: dict[str, Any]) -> Callable[[Image.Image], torch.Tensor]:
    """The numpy transform of the config's crop mode (centre crop or border pad); timm's own transform otherwise."""
    _, h, w = cfg["input_size"]
    numpy_cls = NUMPY_TRANSFORMS.get(cfg.get("crop_mode") or "center")
    if numpy_cls and cfg.get("interpolation") in RESAMPLE and h == w and 0 < float(cfg.get("crop_pct") or 0) <= 1:
        return numpy_cls(cfg)
    import timm.data

    return timm.data.create_transform(**cfg, is_training=False)


def stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """torch.stack for preprocessed CPU images, done by numpy (off torch's thread pool, see above)."""
    return torch.from_numpy(np.stack([t.numpy() for t in tensors]))
