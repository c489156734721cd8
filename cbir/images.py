"""Decode any user-supplied image (path, bytes, PIL image or array) into a safe, fully loaded RGB image.

Every decoding failure, whatever PIL raises and wherever (open, header parse, load, EXIF, convert),
becomes an ImageError whose message tells the user what was wrong and what to do; the log keeps PIL's detail.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Callable, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000
MIN_SIDE = 16
READABLE_FORMATS = "JPEG, PNG, WebP, GIF, BMP or TIFF"

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WHITE = (255, 255, 255, 255)
# File signatures, to name the format in a message when PIL fails before it could tell (header parse).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"\x00\x00\x01\x00", "ICO"),
)


class ImageError(ValueError):
    """An image that cannot be used; the message is meant to be shown to the user as is."""


def load_image(source: ImageSource) -> Image.Image:
    """Return `source` as a new, fully loaded RGB image, or raise ImageError saying why it is unusable.

    Sizes are checked from the header before any pixels are decoded, so oversized uploads are cheap to reject.
    """
    if isinstance(source, np.ndarray):
        return _to_rgb(_from_array(source))
    if isinstance(source, Image.Image):
        return _guarded(lambda: _decode(source), "the image", source.format)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return _open_and_decode(lambda: io.BytesIO(data), f"{len(data)} bytes of uploaded data", data[:16])
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return _open_and_decode(lambda: path, repr(path.name or str(path)), _head(path))
    raise TypeError(f"cannot load an image from {type(source).__name__}; expected a path, bytes, PIL image or array")


def sniff_format(head: bytes) -> str | None:
    """The image format a file's first bytes announce (JPEG, PNG, GIF, WebP, TIFF, BMP, ICO), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for sig, name in _SIGNATURES if head.startswith(sig)), None)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except OSError:
        return b""  # the open below reports the real problem (missing, folder, permission)


def _open_and_decode(open_fp: Callable[[], Path | io.BytesIO], what: str, head: bytes) -> Image.Image:
    """Open a file or buffer with PIL and decode it; every failure, open included, becomes an ImageError."""
    if not head:
        _check_readable_file(open_fp(), what)
        raise ImageError(f"The file is empty (0 bytes, {what}): upload a photo in {READABLE_FORMATS} format.")

    def run() -> Image.Image:
        with Image.open(open_fp()) as im:
            return _decode(im)

    return _guarded(run, what, sniff_format(head))


def _check_readable_file(fp: Path | io.BytesIO, what: str) -> None:
    """Missing files, folders and unreadable files get their own message (an empty buffer needs none)."""
    if isinstance(fp, Path):
        try:
            fp.open("rb").close()
        except FileNotFoundError:
            raise ImageError(f"File not found: {what}: check the path.") from None
        except IsADirectoryError:
            raise ImageError(f"Not a file but a folder: {what}: pick an image file inside it.") from None
        except OSError as e:
            raise ImageError(f"Cannot read {what}: {e.strerror or 'permission denied'}.") from None


def _guarded(decode: Callable[[], Image.Image], what: str, fmt: str | None) -> Image.Image:
    """Run a decode step with PIL's warnings silenced (bomb warnings become errors) and translate any failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about corrupt EXIF / truncated reads; the log gets the detail
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return decode()
        except ImageError:
            raise
        except FileNotFoundError:
            raise ImageError(f"File not found: {what}: check the path.") from None
        except IsADirectoryError:
            raise ImageError(f"Not a file but a folder: {what}: pick an image file inside it.") from None
        except PermissionError:
            raise ImageError(f"Cannot read {what}: permission denied.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageError(_bomb_message(str(e))) from None
        except UnidentifiedImageError as e:
            log.info("not an image (%s): %s", what, e)
            if fmt:  # a known signature PIL could not parse: a damaged header
                raise ImageError(_corrupt_message(what, fmt)) from None
            raise ImageError(
                f"Not an image file (could not decode {what}): upload a photo in {READABLE_FORMATS} format."
            ) from None
        except MemoryError:
            log.warning("out of memory decoding %s", what)
            raise ImageError(f"Image is too large to decode ({what}): resize it and try again.") from None
        except Exception as e:  # noqa: BLE001  PIL raises OSError, SyntaxError, ValueError, struct.error, ... on bad data
            log.info("could not decode %s (%s): %s: %s", what, fmt or "unknown format", type(e).__name__, e)
            raise ImageError(_corrupt_message(what, fmt)) from None


def _corrupt_message(what: str, fmt: str | None) -> str:
    kind = f"{fmt} data" if fmt else "image data"
    return (
        f"Corrupt or truncated image ({what}): this is not an image we can read ({kind} damaged or cut short). "
        "Try another photo, or open this one in an image viewer and save it again as JPEG or PNG."
    )


def _decode(im: Image.Image) -> Image.Image:
    """Check the header size, decode the pixels, apply EXIF orientation and convert to RGB."""
    _check_size(*im.size)
    im.load()
    return _to_rgb(_upright(im))


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a malformed EXIF block is ignored rather than failing the image."""
    try:
        return ImageOps.exif_transpose(im) or im
    except Exception as e:  # noqa: BLE001  any EXIF parsing failure: keep the pixels as stored
        log.info("ignored unreadable EXIF orientation: %s: %s", type(e).__name__, e)
        return im


def _check_size(width: int, height: int) -> None:
    """Reject images too large to decode safely or too small to mean anything."""
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"Image is {width}x{height} pixels ({width * height / 1e6:.1f} MP); the limit is {MAX_PIXELS / 1e6:g} MP: "
            "resize it and try again."
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(
            f"Image is {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed: upload a larger photo."
        )


def _bomb_message(pil_message: str) -> str:
    """PIL's own decompression-bomb check fires before ours and only reports a pixel count; reword it."""
    m = re.search(r"\((\d+) pixels\)", pil_message)
    size = f" ({int(m.group(1)) / 1e6:.1f} MP)" if m else ""
    return f"Image is too large{size}; the limit is {MAX_PIXELS / 1e6:g} MP: resize it and try again."


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
        raise ImageError(f"Unsupported image mode {mode!r}: save the image as an RGB JPEG or PNG and try again.") from None


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
