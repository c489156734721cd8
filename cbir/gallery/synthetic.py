"""Generated garment images whose colour and silhouette are their labels, for tests and smoke runs."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Iterable

from PIL import Image, ImageDraw

from cbir.images import MIN_SIDE
from cbir.gallery.labels import COLOURS, TYPES, LabelError, parse_label

COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 25),
    "blue": (30, 60, 200),
    "brown": (125, 75, 35),
    "green": (35, 145, 55),
    "red": (205, 30, 35),
    "white": (245, 245, 245),
}

# The 24 `colour_type` class folders of the real Apparel Images Dataset.
DATASET_CLASSES: tuple[str, ...] = (
    "black_dress", "black_pants", "black_shirt", "black_shoes", "black_shorts",
    "blue_dress", "blue_pants", "blue_shirt", "blue_shoes", "blue_shorts",
    "brown_pants", "brown_shoes", "brown_shorts",
    "green_pants", "green_shirt", "green_shoes", "green_shorts",
    "red_dress", "red_pants", "red_shoes",
    "white_dress", "white_pants", "white_shoes", "white_shorts",
)  # fmt: skip

# Background grey range: far enough from every garment colour (incl. white and black) to keep the silhouette visible.
_BACKGROUND_GREY = (150, 205)
_COLOUR_NOISE = 15
_OUTLINE_RGB = (60, 60, 60)

Polygon = list[tuple[float, float]]

# Silhouettes in unit coordinates (x right, y down), all inside [0.15, 0.85]^2 so jitter keeps them in frame.
_DRESS: Polygon = [(0.40, 0.15), (0.60, 0.15), (0.64, 0.35), (0.85, 0.85), (0.15, 0.85), (0.36, 0.35)]
_PANTS: Polygon = [(0.30, 0.15), (0.70, 0.15), (0.72, 0.85), (0.54, 0.85), (0.50, 0.38), (0.46, 0.85), (0.28, 0.85)]
_SHORTS: Polygon = [(0.25, 0.30), (0.75, 0.30), (0.82, 0.62), (0.55, 0.62), (0.50, 0.48), (0.45, 0.62), (0.18, 0.62)]
_SHIRT: Polygon = [
    (0.38, 0.18), (0.62, 0.18), (0.85, 0.32), (0.78, 0.46), (0.68, 0.40), (0.68, 0.85),
    (0.32, 0.85), (0.32, 0.40), (0.22, 0.46), (0.15, 0.32),
]  # fmt: skip
# One shoe in a unit box, toe to the right: high heel counter, low sloping vamp, flat sole.
_SHOE: Polygon = [(0.0, 0.0), (0.30, 0.0), (0.45, 0.45), (1.0, 0.60), (1.0, 1.0), (0.0, 1.0)]


def garment_image(colour: str, garment_type: str, size: int = 64, seed: int = 0) -> Image.Image:
    """A `size`x`size` RGB image of one garment silhouette in `colour` on a grey background.

    Position, scale, exact colour and background vary with `seed` (deterministically) so one class is not one image.
    """
    if colour not in COLOUR_RGB:
        raise ValueError(f"unknown colour {colour!r}; expected one of {', '.join(COLOURS)}")
    if garment_type not in TYPES:
        raise ValueError(f"unknown garment type {garment_type!r}; expected one of {', '.join(TYPES)}")
    if size < MIN_SIDE:
        raise ValueError(f"size must be at least {MIN_SIDE}, got {size}")
    rng = random.Random(_derive_seed(colour, garment_type, size, seed))
    grey = rng.randint(*_BACKGROUND_GREY)
    fill = tuple(min(255, max(0, c + rng.randint(-_COLOUR_NOISE, _COLOUR_NOISE))) for c in COLOUR_RGB[colour])
    scale = size * rng.uniform(0.9, 1.1)
    cx = size * (0.5 + rng.uniform(-0.1, 0.1))
    cy = size * (0.5 + rng.uniform(-0.1, 0.1))

    image = Image.new("RGB", (size, size), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    outline = _OUTLINE_RGB if colour == "white" else None
    width = max(1, size // 40)
    for poly in _silhouette(garment_type, rng):
        points = [(cx + (x - 0.5) * scale, cy + (y - 0.5) * scale) for x, y in poly]
        draw.polygon(points, fill=fill, outline=outline, width=width)
    return image


def write_image_folder(
    root: str | Path,
    classes: Iterable[str] | None = None,
    per_class: int = 3,
    size: int = 64,
    seed: int = 0,
    fmt: str = "png",
) -> list[Path]:
    """Write `root/<colour_type>/<nnn>.<fmt>` images, laid out like the real dataset; return the paths sorted."""
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    ext = fmt.lower().lstrip(".")
    names = list(dict.fromkeys(DATASET_CLASSES if classes is None else classes))
    labels = [parse_label(name) for name in names]  # validate every name before writing anything
    drawable = [lab for lab in labels if lab.colour in COLOUR_RGB and lab.type in TYPES]
    if len(drawable) < len(labels):
        bad = next(n for n, lab in zip(names, labels) if lab not in drawable)
        raise LabelError(f"cannot generate images for class {bad!r}: name it colour_type with colours "
                         f"{', '.join(COLOURS)} and types {', '.join(TYPES)}")
    root = Path(root)
    paths: list[Path] = []
    for label in labels:
        folder = root / label.name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = garment_image(label.colour, label.type, size=size, seed=_derive_seed(seed, label.name, i))
            path = folder / f"{i:03d}.{ext}"
            image.save(path)
            paths.append(path)
    return sorted(paths)


def _silhouette(garment_type: str, rng: random.Random) -> list[Polygon]:
    """The polygons of one garment type; shoes come as a single shoe or a pair, facing left or right."""
    if garment_type == "shoes":
        boxes = [(0.15, 0.85)] if rng.random() < 0.5 else [(0.15, 0.48), (0.52, 0.85)]
        flip = rng.random() < 0.5
        top, bottom = 0.62, 0.85
        return [
            [(x0 + (1 - u if flip else u) * (x1 - x0), top + v * (bottom - top)) for u, v in _SHOE]
            for x0, x1 in boxes
        ]
    return [{"dress": _DRESS, "pants": _PANTS, "shorts": _SHORTS, "shirt": _SHIRT}[garment_type]]


def _derive_seed(*parts: object) -> int:
    """A stable 64-bit seed from any parts (unlike hash(), independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")
