"""Decode any user-supplied image (path, bytes, PIL image or array) into a safe, fully loaded RGB image."""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000
MIN_SIDE = 16

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

# Errors PIL's decoders raise on corrupt or truncated data (it is not consistent about which).
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, TypeError, IndexError, KeyError, struct.error, zlib.error)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WHITE = (255, 255, 255, 255)


class ImageError(ValueError):
    """An image that cannot be used; the message is meant to be shown to the user as is."""


def load_image(source: ImageSource) -> Image.Image:
    """Return `source` as a new, fully loaded RGB image, or raise ImageError saying why it is unusable.

    Sizes are checked from the header before any pixels are decoded, so oversized uploads are cheap to reject.
    """
    if isinstance(source, np.ndarray):
        return _to_rgb(_from_array(source))
    if isinstance(source, Image.Image):
        return _decode(source, "the image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _open_and_decode(io.BytesIO(bytes(source)), f"{len(source)} bytes of uploaded data")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return _open_and_decode(path, repr(path.name or str(path)))
    raise TypeError(f"cannot load an image from {type(source).__name__}; expected a path, bytes, PIL image or array")


def _open_and_decode(fp: Path | io.BytesIO, what: str) -> Image.Image:
    """Open a file or buffer with PIL and decode it, translating every failure into an ImageError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(fp) as im:
                return _decode(im, what)
        except ImageError:
            raise
        except FileNotFoundError:
            raise ImageError(f"File not found: {what}") from None
        except IsADirectoryError:
            raise ImageError(f"Not a file but a folder: {what}") from None
        except PermissionError:
            raise ImageError(f"Cannot read {what}: permission denied") from None
        except UnidentifiedImageError:
            raise ImageError(f"Not an image file (could not decode {what})") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageError(_bomb_message(str(e))) from None


def _decode(im: Image.Image, what: str) -> Image.Image:
    """Check the header size, decode the pixels, apply EXIF orientation and convert to RGB."""
    _check_size(*im.size)
    try:
        im.load()
    except _DECODE_ERRORS as e:
        raise ImageError(f"Corrupt or truncated image ({what}): {e}") from None
    return _to_rgb(_upright(im))


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a malformed EXIF block is ignored rather than failing the image."""
    try:
        return ImageOps.exif_transpose(im) or im
    except _DECODE_ERRORS:
        return im


def _check_size(width: int, height: int) -> None:
    """Reject images too large to decode safely or too small to mean anything."""
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"Image is {width}x{height} pixels ({width * height / 1e6:.1f} MP); the limit is {MAX_PIXELS / 1e6:g} MP"
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(f"Image is {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")


def _bomb_message(pil_message: str) -> str:
    """PIL's own decompression-bomb check fires before ours and only reports a pixel count; reword it."""
    m = re.search(r"\((\d+) pixels\)", pil_message)
    size = f" ({int(m.group(1)) / 1e6:.1f} MP)" if m else ""
    return f"Image is too large{size}; the limit is {MAX_PIXELS / 1e6:g} MP"


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB: alpha onto white, high bit depths rescaled rather than clipped."""
    mode = im.mode
    if mode.startswith("I;16"):
        return Image.fromarray(_u16_to_u8(np.asarray(im))).convert("RGB")
    if mode in ("I", "F"):
        return Image.fromarray(_scale_by_max(np.asarray(im))).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = (im.convert("LA") if mode == "La" else im).convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", im.size, _WHITE), rgba).convert("RGB")
    if mode == "RGB":
        return im.copy()
    try:
        return im.convert("RGB")
    except ValueError:
        if mode == "LAB":
            return _lab_to_rgb(im)
        raise ImageError(f"Unsupported image mode {mode!r}") from None


def _lab_to_rgb(im: Image.Image) -> Image.Image:
    """LAB -> sRGB through LittleCMS, for Pillow versions whose convert() lacks it."""
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return ImageCms.applyTransform(im, transform)


def _u16_to_u8(a: np.ndarray) -> np.ndarray:
    """Map the full 16-bit range 0..65535 onto 0..255."""
    return np.round(a.astype(np.float32) / 257.0).astype(np.uint8)


def _scale_by_max(a: np.ndarray) -> np.ndarray:
    """Integer/float data: scale by the image's own max if it exceeds 255, else take values as 0..255."""
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(a.max()) if a.size else 0.0
    if top > 255:
        a = a * (255.0 / top)
    return np.round(np.clip(a, 0, 255)).astype(np.uint8)


def _from_array(a: np.ndarray) -> Image.Image:
    """HxW, HxWx1, HxWx3 or HxWx4 array (bool, uint8, uint16, other ints, float in [0,1]) -> L/RGB/RGBA image."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ImageError(f"Image array has shape {a.shape}; expected HxW, HxWx3 or HxWx4")
    _check_size(a.shape[1], a.shape[0])
    if a.dtype == np.bool_:
        u8 = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        u8 = a
    elif a.dtype == np.uint16:
        u8 = _u16_to_u8(a)
    elif np.issubdtype(a.dtype, np.integer):
        u8 = _scale_by_max(a)
    elif np.issubdtype(a.dtype, np.floating):
        u8 = _unit_float_to_u8(a)
    else:
        raise ImageError(f"Image array has unsupported dtype {a.dtype}")
    return Image.fromarray(np.ascontiguousarray(u8))


def _unit_float_to_u8(a: np.ndarray) -> np.ndarray:
    """Float pixels must lie in [0, 1] (tiny overshoot from resampling is clipped)."""
    if not np.all(np.isfinite(a)):
        raise ImageError("Image array contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ImageError(f"Float image values must be in [0, 1]; got {lo:g}..{hi:g}")
    return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
