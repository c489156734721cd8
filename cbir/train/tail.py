"""The pieces of the backbone's adaptation (cbir/train/backbone.py) that touch the network: the frozen trunk (torch and ONNX), the trainable
tail (blocks[k:] + conv_head + bn2 + pooling), cached maps and the adapted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from cbir.embed.backbones import DEFAULT_MODEL, WHOLE_PHOTO, create_model


CUT_BLOCKS = (4, 5, 6)  # may be cached: the inputs of blocks[4] (88x17x17), [5] (120x17x17), [6] (208x9x9) at 260 px
CACHED_BLOCKS = (5, 6)  # cached by default


CROP_MODES = ("center", "border", "squash")  # timm's eval crop modes; border and squash keep the whole photo
CROP_VIEWS = tuple(f"crop{i}" for i in range(1, 9))  # seeded training views of a photo (training_view)
TRAIN_CROP_AREA = (0.5, 1.0)  # share of the photo's area a training view keeps
TRAIN_PHOTOMETRIC = 0.15  # brightness and contrast within +-15 %; no hue change (colour labels stay true)


def base_model(crop_mode: str = "center") -> tuple[nn.Module, Any, dict]:
    """The default backbone with its ImageNet weights, timm's eval transform and data config (`crop_mode`:
    timm's; "border" scales the longer side to the input and pads, crop_pct 1, so no part of the photo is cut)."""
    import timm.data

    model, _ = create_model(DEFAULT_MODEL, "pretrained")
    cfg = timm.data.resolve_data_config({}, model=model)
    if crop_mode != "center":  # the registry's whole-photo config (crop_pct 1), in this crop mode
        cfg.update({**WHOLE_PHOTO, "crop_mode": crop_mode})
    return model.eval(), timm.data.create_transform(**cfg, is_training=False), cfg


def training_view(image: Any, view: str, row: int) -> Any:
    """A seeded training view of a PIL photo: a crop of 50-100 % of its area (aspect within 3:4-4:3 of the
    photo's), mirrored half the time, brightness and contrast within 15 %; `view` ("crop3") and `row` seed it."""
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng([CROP_VIEWS.index(view) + 1, row])
    w, h = image.size
    area = rng.uniform(*TRAIN_CROP_AREA) * w * h
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))) * w / h
    cw, ch = int(round(min(w, np.sqrt(area * aspect)))), int(round(min(h, np.sqrt(area / aspect))))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    image = image.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = ImageEnhance.Brightness(image).enhance(1 + rng.uniform(-TRAIN_PHOTOMETRIC, TRAIN_PHOTOMETRIC))
    return ImageEnhance.Contrast(image).enhance(1 + rng.uniform(-TRAIN_PHOTOMETRIC, TRAIN_PHOTOMETRIC))


def trunk(model: nn.Module, x: torch.Tensor, blocks: tuple[int, ...] = CACHED_BLOCKS) -> dict[int, torch.Tensor]:
    """Run the frozen stem and blocks up to the last of `blocks`; return the inputs of those blocks."""
    x = model.bn1(model.conv_stem(x))
    out = {}
    for i, block in enumerate(model.blocks):
        if i in blocks:
            out[i] = x
        if i == max(blocks):
            break
        x = block(x)
    return out


class Tail(nn.Module):
    """blocks[k:] + conv_head + bn2 + global average pool: cached map -> 1280-d embedding (as the backbone)."""

    def __init__(self, model: nn.Module, from_block: int) -> None:
        super().__init__()
        self.from_block = from_block
        self.blocks = nn.Sequential(*[model.blocks[i] for i in range(from_block, len(model.blocks))])
        self.conv_head, self.bn2 = model.conv_head, model.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv_head(self.blocks(x))).mean((2, 3))


class _Trunk(nn.Module):
    def __init__(self, model: nn.Module, blocks: tuple[int, ...]) -> None:
        super().__init__()
        self.model, self.blocks = model, blocks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = trunk(self.model, x, self.blocks)
        return tuple(out[b] for b in self.blocks)


def trunk_session(model: nn.Module, cfg: dict, folder: Path, threads: int,
                  blocks: tuple[int, ...] = CACHED_BLOCKS) -> Any:
    """An ONNX Runtime session for the frozen trunk (exported once per set of blocks), outputs = their inputs."""
    path = folder / ("trunk.onnx" if tuple(blocks) == CACHED_BLOCKS else f"trunk-{'-'.join(map(str, blocks))}.onnx")
    import onnxruntime as ort

    if not path.is_file():
        with torch.no_grad():
            torch.onnx.export(_Trunk(model, blocks).eval(), torch.zeros(2, *cfg["input_size"]), str(path), input_names=["x"],
                              output_names=[f"block{b}" for b in blocks], dynamic_axes={"x": {0: "n"}},
                              opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def load_maps(cache: Path, block: int, views: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {v: np.load(cache / f"block{block}_{v}.npy", mmap_mode="r") for v in views}


def embed_maps(tail: Tail, maps: np.ndarray, rows: np.ndarray, batch: int = 256) -> np.ndarray:
    """Embeddings of cached maps through the tail (eval mode), float32."""
    tail.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(rows), batch):
            x = torch.from_numpy(np.asarray(maps[rows[s:s + batch]], dtype=np.float32))
            out.append(tail(x.contiguous(memory_format=torch.channels_last)).numpy())
    return np.concatenate(out)


def adapted_model(weights: str) -> nn.Module:
    """The default architecture with an adapted (headless) state dict, loaded strictly ("pretrained": ImageNet's)."""
    import timm

    if weights == "pretrained":  # the ImageNet weights: checks the harness against an existing gallery
        return base_model()[0]
    model = timm.create_model(DEFAULT_MODEL, pretrained=False, num_classes=0)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval()
