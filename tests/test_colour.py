import numpy as np
import pytest
from PIL import Image

from cbir.embed.colour import COLOUR_COLUMN, COLOUR_SPEC_FILE, ColourSpec, colour_descriptor, colour_descriptors
from cbir.gallery.dataset import Gallery


def _garment_on(background: tuple[int, int, int], garment: tuple[int, int, int], size: int = 96) -> Image.Image:
    """A garment-coloured square covering the middle third of a plain background."""
    a = np.zeros((size, size, 3), np.uint8)
    a[:] = background
    a[size // 3 : 2 * size // 3, size // 3 : 2 * size // 3] = garment
    return Image.fromarray(a)


def test_descriptor_is_hellinger_normalised_and_deterministic():
    spec = ColourSpec()
    img = _garment_on((240, 240, 240), (200, 30, 30))
    d = colour_descriptor(img, spec)
    assert d.shape == (spec.dim,) == (576,) and d.dtype == np.float32
    assert np.all(d >= 0) and np.linalg.norm(d) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(d, colour_descriptor(np.asarray(img), spec))


def test_border_weighting_ignores_the_background():
    """Red garment on white vs on green: with border weighting nearly the same descriptor, without it not."""
    red_on_white = _garment_on((250, 250, 250), (200, 30, 30))
    red_on_green = _garment_on((30, 160, 40), (200, 30, 30))
    blue_on_white = _garment_on((250, 250, 250), (30, 40, 200))
    for weighting, same_floor in (("border", 0.8), ("none", None)):  # resampled garment edges blend colours
        spec = ColourSpec(weighting=weighting)
        a, b, c = (colour_descriptor(x, spec) for x in (red_on_white, red_on_green, blue_on_white))
        if same_floor is not None:
            assert a @ b > same_floor and a @ b > a @ c + 0.5
        else:
            assert a @ b < 0.5  # the plain centre histogram is dominated by the background
    spec = ColourSpec()
    plain = Image.new("RGB", (64, 64), (120, 120, 120))  # nothing differs from the border: centre prior only
    assert np.linalg.norm(colour_descriptor(plain, spec)) == pytest.approx(1.0, abs=1e-5)


def test_spec_roundtrip_and_unknown_weighting(tmp_path):
    spec = ColourSpec(bins=(6, 2, 2), weighting="none")
    spec.save(tmp_path / "s.json")
    assert ColourSpec.load(tmp_path / "s.json") == spec and spec.dim == 24
    with pytest.raises(ValueError, match="unknown colour weighting"):
        ColourSpec(weighting="sam")


def test_gallery_stores_descriptors_and_old_galleries_still_load(gallery, gallery_dir, tmp_path):
    assert gallery.descriptors.shape == (len(gallery), gallery.colour_spec.dim)
    assert (gallery_dir / COLOUR_SPEC_FILE).is_file()
    loaded = Gallery.load(gallery_dir)
    assert loaded.colour_spec == gallery.colour_spec
    np.testing.assert_array_equal(loaded.descriptors, gallery.descriptors)
    first = colour_descriptor(gallery.image_bytes(0)[0], gallery.colour_spec)
    np.testing.assert_allclose(gallery.descriptors[0], first, atol=1e-6)  # queries compute it the same way
    old = Gallery(gallery.dataset.remove_columns([COLOUR_COLUMN]), gallery.spec)
    old_dir = old.save(tmp_path / "old")
    assert not (old_dir / COLOUR_SPEC_FILE).exists()
    reloaded = Gallery.load(old_dir)
    assert reloaded.colour_spec is None and reloaded.descriptors is None
    added = reloaded.with_colour(progress=False)
    np.testing.assert_allclose(added.descriptors, gallery.descriptors, atol=1e-6)


def test_descriptors_batch_matches_single(gallery):
    imgs = [gallery.image(i) for i in range(3)]
    np.testing.assert_array_equal(colour_descriptors(imgs), np.stack([colour_descriptor(i) for i in imgs]))
