import numpy as np
import pytest
from PIL import Image

from cbir.search.crop import crop_to_box
from cbir.images import ImageError


def _image():
    a = np.zeros((60, 100, 3), np.uint8)
    a[:, 50:] = (200, 10, 10)
    return Image.fromarray(a)


def test_crop_selects_the_box_and_clips_to_the_image():
    im = _image()
    assert crop_to_box(im, None) is im and crop_to_box(im, []) is im
    right = crop_to_box(im, [50, 0, 100, 60])
    assert right.size == (50, 60) and np.asarray(right)[..., 0].min() == 200
    assert crop_to_box(im, [-10, -10, 30.4, 500]).size == (30, 60)


@pytest.mark.parametrize(
    "box, message",
    [([1, 2, 3], "four numbers"), (["a", 0, 1, 1], "four numbers"), ([50, 0, 10, 60], "x0 < x1"),
     ([0, 0, 10, 60], "at least 16x16"), ([200, 0, 300, 60], "leaves 0x60")],
)
def test_bad_boxes_are_clear_errors(box, message):
    with pytest.raises(ImageError, match=message):
        crop_to_box(_image(), box)


def test_parse_box_from_api_lists_and_ui_text():
    from cbir.search.crop import parse_box

    assert parse_box(None) is None and parse_box("") is None and parse_box([]) is None
    assert parse_box("10, 20, 30, 40") == parse_box("[10 20 30 40]") == parse_box([10, 20, 30, 40]) == [10, 20, 30, 40]
    for bad in ("1, 2, 3", "a b c d", [1, 2], 7):
        with pytest.raises(ImageError, match="four numbers"):
            parse_box(bad)


def test_corners_and_preview():
    from cbir.ui.crop import box_from_corners, draw_box

    assert box_from_corners([50, 5], [10, 40]) == [10, 5, 50, 40]
    im = Image.new("RGB", (100, 60), (0, 0, 0))
    boxed = np.asarray(draw_box(im, [10, 10, 60, 50]))
    assert boxed[10, 30].tolist() == [255, 0, 80] and boxed[30, 30].tolist() == [0, 0, 0]
    assert np.asarray(draw_box(im, None)).max() == 0
