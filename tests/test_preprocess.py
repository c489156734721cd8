"""The numpy eval transform equals timm's own, bit for bit, for every registered timm backbone's data config."""

from pathlib import Path

import numpy as np
import pytest
import timm
import timm.data
import torch
from PIL import Image

from cbir.images import load_image
from cbir.embed.preprocess import BorderTransform, CentreCropTransform, eval_transform, stack

CC0 = Path(__file__).parent / "data" / "cc0"


def _images():
    rng = np.random.default_rng(0)
    photos = [load_image(p) for p in sorted(CC0.glob("*.jpg"))]
    sizes = [(292, 292), (292, 400), (400, 292), (100, 50), (1000, 3000), (261, 260), (260, 260), (37, 1200), (1, 1)]
    noise = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in sizes]
    return photos + noise + [noise[1].convert("L"), noise[2].convert("RGBA")]


@pytest.mark.parametrize("model", ["tf_efficientnet_lite2", "vgg16.tv_in1k", "tf_efficientnet_lite0"])
def test_numpy_transform_is_timms_bit_for_bit(model):
    cfg = timm.data.resolve_data_config({}, model=timm.create_model(model, pretrained=False))
    ours, ref = eval_transform(cfg), timm.data.create_transform(**cfg, is_training=False)
    assert isinstance(ours, CentreCropTransform)
    for im in _images():
        a, b = ours(im), ref(im.convert("RGB"))
        assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape
        assert torch.equal(a, b), (model, im.size, im.mode)
    assert ours.view(im).size == tuple(cfg["input_size"][1:])


@pytest.mark.parametrize("crop_pct", [1.0, 0.9])
def test_border_mode_is_timms_bit_for_bit(crop_pct):
    """crop_mode "border" (the whole photo, padded with the mean colour; tf_efficientnet_lite2_clothing_v2's)."""
    model = timm.create_model("tf_efficientnet_lite2", pretrained=False,
                              pretrained_cfg_overlay={"crop_mode": "border", "crop_pct": crop_pct})
    cfg = timm.data.resolve_data_config({}, model=model)
    ours, ref = eval_transform(cfg), timm.data.create_transform(**cfg, is_training=False)
    assert isinstance(ours, BorderTransform)
    for im in _images():
        a, b = ours(im), ref(im.convert("RGB"))
        assert a.shape == b.shape and torch.equal(a, b), (crop_pct, im.size, im.mode)
    tall = ours.view(Image.new("RGB", (300, 400), (255, 0, 0)))
    assert tall.size == (260, 260) and tall.getpixel((0, 130)) == (128, 128, 128)  # padded left and right, not cut
    assert tall.getpixel((130, 0)) == tall.getpixel((130, 259)) == (255, 0, 0)


def test_other_crops_fall_back_to_timm_and_stack_matches_torch():
    cfg = {"input_size": (3, 224, 224), "interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3,
           "crop_pct": 1.0, "crop_mode": "squash"}
    assert not isinstance(eval_transform(cfg), CentreCropTransform)
    ts = [torch.rand(3, 8, 8) for _ in range(3)]
    assert torch.equal(stack(ts), torch.stack(ts))
