"""The pieces of benchmarks/finetune.py that touch the network: the frozen trunk (torch and ONNX), the trainable
tail (blocks[k:] + conv_head + bn2 + pooling), cached maps and the adapted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from cbir.embed.backbones import DEFAULT_MODEL, create_model


CUT_BLOCKS = (5, 6)  # cached: the inputs of blocks[5] (120x17x17) and blocks[6] (208x9x9) at 260 px


CROP_MODES = ("center", "border", "squash")  # timm's eval crop modes; border and squash keep the whole photo


def base_model(crop_mode: str = "center") -> tuple[nn.Module, Any, dict]:
    """The default backbone with its ImageNet weights, timm's eval transform and data config (`crop_mode`:
    timm's; "border" scales the longer side to the input and pads, crop_pct 1, so no part of the photo is cut)."""
    import timm.data

    model, _ = create_model(DEFAULT_MODEL, "pretrained")
    cfg = timm.data.resolve_data_config({}, model=model)
    if crop_mode != "center":
        cfg.update(crop_mode=crop_mode, crop_pct=1.0)
    return model.eval(), timm.data.create_transform(**cfg, is_training=False), cfg


def trunk(model: nn.Module, x: torch.Tensor) -> dict[int, torch.Tensor]:
    """Run stem..blocks[4] and blocks[5]; return the inputs of the cut blocks."""
    x = model.bn1(model.conv_stem(x))
    out = {}
    for i, block in enumerate(model.blocks):
        if i in CUT_BLOCKS:
            out[i] = x
        if i == max(CUT_BLOCKS):
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
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = trunk(self.model, x)
        return tuple(out[b] for b in CUT_BLOCKS)


def trunk_session(model: nn.Module, cfg: dict, path: Path, threads: int) -> Any:
    """An ONNX Runtime session for the frozen trunk (exported once), outputs = the cut blocks' inputs."""
    import onnxruntime as ort

    if not path.is_file():
        with torch.no_grad():
            torch.onnx.export(_Trunk(model).eval(), torch.zeros(2, *cfg["input_size"]), str(path), input_names=["x"],
                              output_names=[f"block{b}" for b in CUT_BLOCKS], dynamic_axes={"x": {0: "n"}},
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
