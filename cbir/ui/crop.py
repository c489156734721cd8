"""UI helpers of the crop box: two clicked corners -> a box, and the preview with the box drawn."""

from __future__ import annotations

from typing import Optional, Sequence

from PIL import Image

from cbir.search.crop import Box


def box_from_corners(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """The box spanned by two clicked corners, in either order."""
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])]


def draw_box(image: Image.Image, box: Optional[Box], colour: tuple[int, int, int] = (255, 0, 80)) -> Image.Image:
    """A copy of the image with the box outlined (what will be searched), for the crop preview."""
    from PIL import ImageDraw

    out = image.convert("RGB")
    if box:
        width = max(2, round(min(image.size) / 150))
        ImageDraw.Draw(out).rectangle([float(v) for v in box], outline=colour, width=width)
    return out
