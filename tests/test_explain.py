import numpy as np
import pytest
from PIL import Image

from cbir.search.explain import colourise, explain_pair, location_similarity, pooled
from cbir.gallery.synthetic import garment_image


def test_location_similarity_is_cosine_per_location():
    fmap = np.zeros((2, 1, 3), np.float32)
    fmap[:, 0, 0] = (1, 0)
    fmap[:, 0, 1] = (0, 5)
    fmap[:, 0, 2] = (1, 1)
    np.testing.assert_allclose(location_similarity(fmap, np.array([2.0, 0.0])), [[1, 0, np.sqrt(0.5)]], atol=1e-6)
    np.testing.assert_allclose(pooled(fmap), [2 / 3, 2])


def test_colourise_spans_the_ramp():
    rgb = colourise(np.array([[0.0, 0.5, 1.0]]))
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[0, 2, 0] > rgb[0, 2, 2]  # cold blue -> hot red
    assert colourise(np.ones((2, 2))).shape == (2, 2, 3)


def _on_side(garment: Image.Image, side: str) -> Image.Image:
    canvas = Image.new("RGB", (256, 256), (175, 175, 175))
    canvas.paste(garment, (0 if side == "left" else 128, 64))
    return canvas


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("garment", ["dress", "pants", "shirt"])
@pytest.mark.parametrize("colour", ["red", "blue", "black"])
def test_heat_follows_the_garment(extractor, garment, colour, side):
    g = garment_image(colour, garment, size=128, seed=1)
    e = explain_pair(extractor, _on_side(g, side), g)
    w = e.heat_a.shape[1]
    left, right = e.heat_a[:, : w // 2].mean(), e.heat_a[:, (w + 1) // 2 :].mean()
    assert (left > right) if side == "left" else (right > left)
    assert e.overlay_a.size == e.overlay_b.size == (160, 160)  # the model's view (resize + centre crop)
    assert e.overlay_a.mode == "RGB"
