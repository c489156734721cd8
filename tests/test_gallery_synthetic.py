"""Synthetic garments: deterministic, coloured and shaped by their labels, written in the dataset's folder layout."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cbir.images import load_image
from cbir.gallery.labels import COLOURS, TYPES, LabelError, parse_label
from cbir.gallery.synthetic import COLOUR_RGB, DATASET_CLASSES, garment_image, write_image_folder


def _pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im).astype(np.int16)


def _garment_mask(im: Image.Image) -> np.ndarray:
    """Pixels that differ from the (uniform) background, read off the top-left corner."""
    a = _pixels(im)
    return np.abs(a - a[0, 0]).max(axis=2) > 8


def test_image_mode_and_size() -> None:
    for size in (16, 64, 100):
        im = garment_image("red", "shirt", size=size)
        assert im.mode == "RGB" and im.size == (size, size)


def test_same_seed_same_pixels() -> None:
    for t in TYPES:
        a = garment_image("blue", t, size=48, seed=3)
        b = garment_image("blue", t, size=48, seed=3)
        assert np.array_equal(_pixels(a), _pixels(b))


def test_different_seed_different_pixels() -> None:
    for t in TYPES:
        a = garment_image("green", t, seed=0)
        b = garment_image("green", t, seed=1)
        assert not np.array_equal(_pixels(a), _pixels(b))


def test_background_is_uniform_grey_and_garment_is_visible() -> None:
    for colour in COLOURS:
        for t in TYPES:
            for seed in range(3):
                im = garment_image(colour, t, seed=seed)
                corners = _pixels(im)[[0, 0, -1, -1], [0, -1, 0, -1]]
                assert (corners == corners[0]).all()
                r, g, b = corners[0]
                assert r == g == b
                assert 0.04 < _garment_mask(im).mean() < 0.7, (colour, t, seed)


@pytest.mark.parametrize("colour", COLOURS)
def test_garment_colour_dominates(colour: str) -> None:
    palette = np.array([COLOUR_RGB[c] for c in COLOURS], dtype=float)
    for t in TYPES:
        for seed in range(4):
            im = garment_image(colour, t, seed=seed)
            mean = _pixels(im)[_garment_mask(im)].mean(axis=0)
            nearest = COLOURS[int(np.argmin(((palette - mean) ** 2).sum(axis=1)))]
            assert nearest == colour, (t, seed, mean)


def test_white_garment_has_dark_outline() -> None:
    a = _pixels(garment_image("white", "dress", seed=0))
    garment = a[_garment_mask(garment_image("white", "dress", seed=0))]
    assert (garment.max(axis=1) < 100).any()  # outline
    assert (garment.min(axis=1) > 225).sum() > 0.5 * len(garment)  # body stays white


def test_types_have_different_silhouettes() -> None:
    for seed in range(3):
        masks = {t: _garment_mask(garment_image("red", t, size=64, seed=seed)) for t in TYPES}
        for a, b in combinations(TYPES, 2):
            assert (masks[a] != masks[b]).mean() > 0.05, (a, b, seed)


def test_same_type_varies_but_stays_similar() -> None:
    masks = [_garment_mask(garment_image("black", "pants", seed=s)) for s in range(5)]
    areas = [m.mean() for m in masks]
    assert len({m.tobytes() for m in masks}) > 1
    assert max(areas) < 1.6 * min(areas)


def test_unknown_colour_or_type_raises() -> None:
    with pytest.raises(ValueError, match="purple"):
        garment_image("purple", "dress")
    with pytest.raises(ValueError, match="hat"):
        garment_image("red", "hat")
    with pytest.raises(ValueError):
        garment_image("red", "dress", size=8)


def test_dataset_classes_match_real_dataset() -> None:
    assert len(DATASET_CLASSES) == 24 == len(set(DATASET_CLASSES))
    labels = [parse_label(c) for c in DATASET_CLASSES]
    assert {label.colour for label in labels} == set(COLOURS)
    assert {label.type for label in labels} == set(TYPES)
    assert "brown_dress" not in DATASET_CLASSES and "white_shirt" not in DATASET_CLASSES


def test_write_image_folder_default_classes(tmp_path: Path) -> None:
    paths = write_image_folder(tmp_path, per_class=2, size=32)
    assert len(paths) == 24 * 2
    assert paths == sorted(paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(DATASET_CLASSES)
    for cls in DATASET_CLASSES:
        assert sorted(p.name for p in (tmp_path / cls).iterdir()) == ["000.png", "001.png"]
    for p in paths:
        assert p.is_file() and p.parent.parent == tmp_path
        im = load_image(p)
        assert im.mode == "RGB" and im.size == (32, 32)


def test_write_image_folder_images_match_their_folder(tmp_path: Path) -> None:
    palette = np.array([COLOUR_RGB[c] for c in COLOURS], dtype=float)
    for p in write_image_folder(tmp_path, per_class=1):
        im = load_image(p)
        mean = _pixels(im)[_garment_mask(im)].mean(axis=0)
        assert COLOURS[int(np.argmin(((palette - mean) ** 2).sum(axis=1)))] == parse_label(p.parent.name).colour


def test_write_image_folder_distinct_seeds_and_deterministic(tmp_path: Path) -> None:
    a = write_image_folder(tmp_path / "a", classes=["blue_shirt", "red_shoes"], per_class=3, seed=7)
    b = write_image_folder(tmp_path / "b", classes=["blue_shirt", "red_shoes"], per_class=3, seed=7)
    c = write_image_folder(tmp_path / "c", classes=["blue_shirt", "red_shoes"], per_class=3, seed=8)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert len({p.read_bytes() for p in a}) == 6  # every image in a class differs
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_write_image_folder_jpeg_and_nested_root(tmp_path: Path) -> None:
    root = tmp_path / "x" / "y"
    paths = write_image_folder(root, classes=["green_pants"], per_class=2, fmt="jpg")
    assert [p.relative_to(root).as_posix() for p in paths] == ["green_pants/000.jpg", "green_pants/001.jpg"]
    assert Image.open(paths[0]).format == "JPEG"
    assert load_image(paths[1]).size == (64, 64)


def test_write_image_folder_rejects_bad_class_before_writing(tmp_path: Path) -> None:
    with pytest.raises(LabelError):
        write_image_folder(tmp_path, classes=["red_dress", "purple_dress"])
    assert not any(tmp_path.iterdir())
