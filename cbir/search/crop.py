"""Crop a query to a box before searching, so one garment of an outfit photo can be searched."""

from __future__ import annotations

from typing import Optional, Sequence

from PIL import Image

from cbir.images import MIN_SIDE, ImageError

Box = Sequence[float]


def crop_to_box(image: Image.Image, box: Optional[Box]) -> Image.Image:
    """`image` cropped to box = [x0, y0, x1, y1] in its pixels (clipped to the image); None or [] = no crop.

    Raises ImageError (a message for users) for a malformed box or one smaller than MIN_SIDE pixels.
    """
    if box is None or len(box) == 0:
        return image
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ImageError(f"box must be four numbers [x0, y0, x1, y1] in query pixels; got {list(box)!r}") from None
    if not x0 < x1 or not y0 < y1:
        raise ImageError(f"box must have x0 < x1 and y0 < y1; got {[x0, y0, x1, y1]}")
    w, h = image.size
    cx0, cy0, cx1, cy1 = max(0, round(x0)), max(0, round(y0)), min(w, round(x1)), min(h, round(y1))
    if cx1 - cx0 < MIN_SIDE or cy1 - cy0 < MIN_SIDE:
        raise ImageError(
            f"box {[x0, y0, x1, y1]} leaves {max(0, cx1 - cx0)}x{max(0, cy1 - cy0)} pixels of the {w}x{h} "
            f"image; at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    return image.crop((cx0, cy0, cx1, cy1))


def parse_box(value: object) -> Optional[list[float]]:
    """A box from the API or the UI: None, [] or "" = no crop; a list of 4 numbers or the text "x0, y0, x1, y1"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        parts = [p for p in value.replace("[", " ").replace("]", " ").replace(",", " ").split()]
        try:
            return [float(p) for p in parts] if len(parts) == 4 else _bad_box(value)
        except ValueError:
            return _bad_box(value)
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            return None
        try:
            return [float(v) for v in value] if len(value) == 4 else _bad_box(value)
        except (TypeError, ValueError):
            return _bad_box(value)
    return _bad_box(value)


def _bad_box(value: object) -> list[float]:
    raise ImageError(f"box must be four numbers [x0, y0, x1, y1] in query pixels; got {value!r}")
