"""Seeded fuzz cases for the image decoder: small real files in many formats, truncated and bit-flipped."""

from __future__ import annotations

import io
import random
from typing import Iterator

import numpy as np
from PIL import Image

FORMATS = ("jpeg", "progressive-jpeg", "exif-jpeg", "png", "png-16bit", "png-palette-alpha", "gif", "webp", "tiff",
           "bmp", "ico")


def seed_files() -> dict[str, bytes]:
    """One small valid file per format (a smooth gradient with noise, 48x40, so every codec has real work)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48]
    base = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1) + rng.integers(0, 40, (40, 48, 3))
    rgb = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate on display, so the EXIF path runs

    def save(img: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return buf.getvalue()

    return {
        "jpeg": save(rgb, "JPEG", quality=90),
        "progressive-jpeg": save(rgb, "JPEG", quality=90, progressive=True),
        "exif-jpeg": save(rgb, "JPEG", exif=exif),
        "png": save(rgb, "PNG"),
        "png-16bit": save(Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257), "PNG"),
        "png-palette-alpha": save(palette, "PNG", transparency=0),
        "gif": save(palette, "GIF"),
        "webp": save(rgb, "WEBP", quality=80),
        "tiff": save(rgb, "TIFF"),
        "bmp": save(rgb, "BMP"),
        "ico": save(rgb, "ICO", sizes=[(32, 32)]),
    }


def fuzz_cases(per_format: int = 200, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """`per_format` cases per format: half truncations (every header offset, then spread), half byte flips.

    Yields (case id, bytes); the same arguments always give the same cases.
    """
    rnd = random.Random(seed)
    for fmt, data in seed_files().items():
        n_cut = per_format // 2
        header = list(range(min(len(data), 48, n_cut)))
        spread = np.linspace(48, len(data) - 1, max(0, n_cut - len(header))).astype(int).tolist()
        for cut in header + spread:
            yield f"{fmt}/cut@{cut}", data[:cut]
        for i in range(per_format - n_cut):
            buf = bytearray(data)
            for _ in range(rnd.randint(1, 8)):
                pos = rnd.randrange(len(buf)) if rnd.random() < 0.5 else rnd.randrange(min(len(buf), 128))
                buf[pos] ^= 1 << rnd.randrange(8) if rnd.random() < 0.7 else rnd.randrange(1, 256)
            yield f"{fmt}/flip#{i}", bytes(buf)
