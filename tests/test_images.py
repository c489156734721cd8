"""load_image: every kind of input decodes to a loaded RGB image, and every bad input to a clear ImageError."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cbir import images
from cbir.images import MAX_PIXELS, MIN_SIDE, ImageError, load_image

WHITE = (255, 255, 255)


def _png_bytes(im: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def _png_claiming_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR is patched to claim width x height (no pixel data behind it)."""
    data = bytearray(_png_bytes(Image.new("1", (16, 16))))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _assert_rgb(out: Image.Image, size: tuple[int, int]) -> None:
    assert out.mode == "RGB"
    assert out.size == size


def _rgb_at(out: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, int, int]:
    return tuple(np.asarray(out)[xy[1], xy[0]].tolist())


# --- good inputs -----------------------------------------------------------------------------------------


def test_rgb_png_path_str_and_pathlike(tmp_path: Path) -> None:
    src = Image.new("RGB", (40, 30), (10, 200, 30))
    path = tmp_path / "a.png"
    src.save(path)
    for source in (path, str(path)):
        out = load_image(source)
        _assert_rgb(out, (40, 30))
        assert _rgb_at(out, (39, 29)) == (10, 200, 30)


def test_bytes_and_bytearray() -> None:
    data = _png_bytes(Image.new("RGB", (20, 20), (1, 2, 3)))
    for source in (data, bytearray(data)):
        out = load_image(source)
        _assert_rgb(out, (20, 20))
        assert _rgb_at(out) == (1, 2, 3)


def test_result_is_loaded_and_detached_from_file(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (32, 32), (0, 0, 255)).save(path, quality=95)
    out = load_image(path)
    path.unlink()
    assert type(out) is Image.Image  # not a lazy, file-backed ImageFile
    r, g, b = _rgb_at(out, (16, 16))
    assert b > 240 and r < 15 and g < 15


def test_pil_input_returns_new_image_and_leaves_input_alone() -> None:
    src = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    out = load_image(src)
    assert out is not src
    assert src.mode == "RGBA"
    _assert_rgb(out, (20, 20))
    assert _rgb_at(out) == WHITE


def test_rgb_pil_input_is_a_copy() -> None:
    src = Image.new("RGB", (20, 20), (5, 6, 7))
    out = load_image(src)
    out.putpixel((0, 0), (9, 9, 9))
    assert src.getpixel((0, 0)) == (5, 6, 7)


def test_grayscale_l(tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    Image.new("L", (20, 18), 100).save(path)
    out = load_image(path)
    _assert_rgb(out, (20, 18))
    assert _rgb_at(out) == (100, 100, 100)


def test_one_bit(tmp_path: Path) -> None:
    im = Image.new("1", (20, 20), 0)
    im.putpixel((5, 5), 1)
    path = tmp_path / "b.png"
    im.save(path)
    out = load_image(path)
    _assert_rgb(out, (20, 20))
    assert _rgb_at(out, (5, 5)) == WHITE
    assert _rgb_at(out, (0, 0)) == (0, 0, 0)


def test_rgba_transparent_becomes_white_and_opaque_is_kept(tmp_path: Path) -> None:
    im = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    im.putpixel((1, 1), (0, 0, 255, 255))
    im.putpixel((2, 2), (0, 0, 0, 128))
    path = tmp_path / "t.png"
    im.save(path)
    out = load_image(path)
    _assert_rgb(out, (20, 20))
    assert _rgb_at(out, (0, 0)) == WHITE  # red but fully transparent: not red, not black
    assert _rgb_at(out, (1, 1)) == (0, 0, 255)
    assert all(abs(c - 127) <= 2 for c in _rgb_at(out, (2, 2)))  # half-transparent black over white


def test_la_transparent_becomes_white() -> None:
    out = load_image(Image.new("LA", (20, 20), (0, 0)))
    _assert_rgb(out, (20, 20))
    assert _rgb_at(out) == WHITE


def test_palette_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (20, 20), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    im.putpixel((3, 3), 1)
    path = tmp_path / "p.png"
    im.save(path, transparency=0)
    assert Image.open(path).info.get("transparency") == 0
    out = load_image(path)
    _assert_rgb(out, (20, 20))
    assert _rgb_at(out, (0, 0)) == WHITE  # index 0 is black but transparent
    assert _rgb_at(out, (3, 3)) == (255, 0, 0)


def test_palette_without_transparency() -> None:
    im = Image.new("P", (20, 20), 1)
    im.putpalette([0, 0, 0, 0, 128, 0] + [0] * (254 * 3))
    assert _rgb_at(load_image(im)) == (0, 128, 0)


def test_cmyk(tmp_path: Path) -> None:
    path = tmp_path / "c.jpg"
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(path, quality=95)
    out = load_image(path)
    _assert_rgb(out, (20, 20))
    r, g, b = _rgb_at(out, (10, 10))
    assert r > 230 and g < 25 and b < 25


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("YCbCr", (255, 128, 128), WHITE),
        ("HSV", (0, 255, 255), (255, 0, 0)),
        ("LAB", (255, 128, 128), WHITE),
    ],
)
def test_other_colour_spaces(mode: str, value: tuple[int, int, int], expected: tuple[int, int, int]) -> None:
    out = load_image(Image.new(mode, (16, 16), value))
    _assert_rgb(out, (16, 16))
    assert all(abs(a - b) <= 3 for a, b in zip(_rgb_at(out), expected))


def _i16(values: list[int], mode: str = "I;16") -> Image.Image:
    im = Image.new("I;16", (16, 16), 0)
    for x, v in enumerate(values):
        im.putpixel((x, 0), v)
    if mode == "I;16":
        return im
    return Image.frombytes(mode, im.size, np.asarray(im).astype(">u2" if mode == "I;16B" else "<u2").tobytes())


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_16_bit_grey_uses_full_range_not_clipped(mode: str) -> None:
    im = _i16([65535, 32768, 0, 257], mode)
    assert im.mode == mode
    out = load_image(im)
    _assert_rgb(out, (16, 16))
    row = np.asarray(out)[0, :4, 0].tolist()
    assert row == [255, 128, 0, 1]  # PIL's convert("L") would give 255 for 32768 and 257


def test_16_bit_png_file(tmp_path: Path) -> None:
    path = tmp_path / "16.png"
    _i16([65535, 32768]).save(path)
    out = load_image(path)
    assert np.asarray(out)[0, :2, 0].tolist() == [255, 128]


def test_32_bit_int_scaled_by_own_max_above_255() -> None:
    im = Image.new("I", (16, 16), 0)
    im.putpixel((0, 0), 1000)
    im.putpixel((1, 0), 500)
    out = load_image(im)
    _assert_rgb(out, (16, 16))
    assert np.asarray(out)[0, :3, 0].tolist() == [255, 128, 0]


def test_32_bit_int_small_values_taken_as_is() -> None:
    out = load_image(Image.new("I", (16, 16), 100))
    assert _rgb_at(out) == (100, 100, 100)


def test_float_image() -> None:
    im = Image.new("F", (16, 16), 0.0)
    im.putpixel((0, 0), 510.0)
    im.putpixel((1, 0), 255.0)
    out = load_image(im)
    _assert_rgb(out, (16, 16))
    assert np.asarray(out)[0, :3, 0].tolist() == [255, 128, 0]
    assert _rgb_at(load_image(Image.new("F", (16, 16), 200.0))) == (200, 200, 200)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif, quality=95)
    out = load_image(path)
    _assert_rgb(out, (20, 40))
    top, bottom = _rgb_at(out, (10, 8)), _rgb_at(out, (10, 32))
    assert top[0] > 200 and top[2] < 50  # the left half is now on top
    assert bottom[2] > 200 and bottom[0] < 50


def test_min_side_boundary() -> None:
    _assert_rgb(load_image(Image.new("RGB", (MIN_SIDE, MIN_SIDE))), (MIN_SIDE, MIN_SIDE))
    with pytest.raises(ImageError, match=f"{MIN_SIDE - 1}x40"):
        load_image(Image.new("RGB", (MIN_SIDE - 1, 40)))


# --- bad inputs ------------------------------------------------------------------------------------------


def test_one_pixel_image_is_too_small(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    with pytest.raises(ImageError, match="1x1") as e:
        load_image(path)
    assert "16x16" in str(e.value)


def test_huge_header_rejected_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming_size(20000, 20000))
    start = time.perf_counter()
    with pytest.raises(ImageError, match="too large") as e:
        load_image(path)
    assert time.perf_counter() - start < 1.0
    assert "400.0 MP" in str(e.value) and "40 MP" in str(e.value)


def test_over_our_limit_but_under_pils_is_reported_with_dimensions() -> None:
    # 48 MP: below PIL's own warning threshold, so only our header check can catch it.
    data = _png_claiming_size(8000, 6000)
    assert 8000 * 6000 > MAX_PIXELS
    with pytest.raises(ImageError, match="8000x6000") as e:
        load_image(data)
    assert "48.0 MP" in str(e.value) and "the limit is 40 MP" in str(e.value)


def test_pil_bomb_warning_becomes_error_and_does_not_leak() -> None:
    data = _png_claiming_size(10000, 10000)  # 100 MP: PIL warns (not raises) at open
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match=r"too large \(100.0 MP\)"):
            load_image(data)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_size_limit_is_checked_before_pixels_are_decoded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    Image.new("RGB", (20, 20)).save(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 399)
    with pytest.raises(ImageError, match="20x20"):
        load_image(path)


def test_non_image_bytes() -> None:
    with pytest.raises(ImageError, match="Not an image file"):
        load_image(b"hello")


def test_text_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "foo.txt"
    path.write_text("not an image")
    with pytest.raises(ImageError, match=r"Not an image file \(could not decode 'foo.txt'\)"):
        load_image(path)


def test_empty_bytes() -> None:
    with pytest.raises(ImageError):
        load_image(b"")


def test_truncated_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    data = buf.getvalue()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as e:
        load_image(path)
    assert "half.jpg" in str(e.value)
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 2])


def test_truncated_png() -> None:
    rng = np.random.default_rng(0)
    data = _png_bytes(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(ImageError, match="truncated"):
        load_image(data[: len(data) // 2])


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found.*nope.jpg"):
        load_image(tmp_path / "nope.jpg")


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        load_image(tmp_path)


def test_truncated_images_are_not_globally_allowed() -> None:
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3)  # PIL's default, untouched


def test_unsupported_source_type() -> None:
    with pytest.raises(TypeError):
        load_image(12345)  # type: ignore[arg-type]


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


# --- numpy arrays ----------------------------------------------------------------------------------------


def test_array_gray_uint8() -> None:
    a = np.full((20, 30), 77, dtype=np.uint8)
    out = load_image(a)
    _assert_rgb(out, (30, 20))
    assert _rgb_at(out) == (77, 77, 77)


def test_array_gray_with_channel_axis() -> None:
    out = load_image(np.full((20, 30, 1), 77, dtype=np.uint8))
    _assert_rgb(out, (30, 20))
    assert _rgb_at(out) == (77, 77, 77)


def test_array_rgb_uint8() -> None:
    a = np.zeros((20, 30, 3), dtype=np.uint8)
    a[..., 1] = 200
    out = load_image(a)
    _assert_rgb(out, (30, 20))
    assert _rgb_at(out) == (0, 200, 0)


def test_array_rgba_transparent_is_white() -> None:
    a = np.zeros((20, 20, 4), dtype=np.uint8)
    a[0, 1] = (0, 0, 255, 255)
    out = load_image(a)
    _assert_rgb(out, (20, 20))
    assert _rgb_at(out, (0, 0)) == WHITE
    assert _rgb_at(out, (1, 0)) == (0, 0, 255)


def test_array_uint16_gray_and_rgb() -> None:
    a = np.zeros((16, 16), dtype=np.uint16)
    a[0, :2] = (65535, 32768)
    assert np.asarray(load_image(a))[0, :2, 0].tolist() == [255, 128]
    rgb = np.zeros((16, 16, 3), dtype=np.uint16)
    rgb[..., 0] = 65535
    assert _rgb_at(load_image(rgb)) == (255, 0, 0)


def test_array_uint16_rgba() -> None:
    a = np.zeros((16, 16, 4), dtype=np.uint16)  # all transparent
    assert _rgb_at(load_image(a)) == WHITE


def test_array_float_unit_range() -> None:
    a = np.zeros((16, 16), dtype=np.float32)
    a[0, :3] = (1.0, 0.5, 0.0)
    assert np.asarray(load_image(a))[0, :3, 0].tolist() == [255, 128, 0]
    rgb = np.zeros((16, 16, 3), dtype=np.float64)
    rgb[..., 2] = 1.0
    assert _rgb_at(load_image(rgb)) == (0, 0, 255)
    rgba = np.ones((16, 16, 4), dtype=np.float32)
    rgba[..., 3] = 0.0
    assert _rgb_at(load_image(rgba)) == WHITE


def test_array_float_out_of_range_is_rejected() -> None:
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        load_image(np.full((16, 16, 3), 255.0))
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((16, 16), np.nan))


def test_array_bool() -> None:
    a = np.zeros((16, 16), dtype=bool)
    a[0, 0] = True
    out = load_image(a)
    assert _rgb_at(out, (0, 0)) == WHITE and _rgb_at(out, (1, 0)) == (0, 0, 0)


def test_array_wide_int_scaled_by_max() -> None:
    a = np.zeros((16, 16), dtype=np.int32)
    a[0, :2] = (1000, 500)
    assert np.asarray(load_image(a))[0, :2, 0].tolist() == [255, 128]


def test_array_non_contiguous() -> None:
    a = np.zeros((20, 40, 3), dtype=np.uint8)
    a[:, ::2] = (9, 8, 7)
    out = load_image(a[:, ::2])
    _assert_rgb(out, (20, 20))
    assert _rgb_at(out, (5, 5)) == (9, 8, 7)


@pytest.mark.parametrize("shape", [(3, 32, 32), (32, 32, 2), (32,), (2, 32, 32, 3)])
def test_array_bad_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros(shape, dtype=np.uint8))


def test_array_too_small() -> None:
    with pytest.raises(ImageError, match="8x4"):
        load_image(np.zeros((4, 8, 3), dtype=np.uint8))
