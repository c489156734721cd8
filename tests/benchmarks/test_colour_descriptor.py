"""benchmarks/colour_descriptor.py: shades-of-grey, and a run on the tiny gallery that writes one row per recipe."""

import json

import numpy as np
from PIL import Image

from benchmarks.colour_descriptor import main, shades_of_grey


def test_shades_of_grey_removes_a_colour_cast():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:16] = (200, 100, 50)  # a warm half and a grey half
    rgb[16:] = (120, 120, 120)
    out = np.asarray(shades_of_grey(Image.fromarray(rgb)), np.float32)
    ill = np.power(np.mean(np.power(out.reshape(-1, 3) + 1e-3, 6), axis=0), 1 / 6)
    assert np.ptp(ill) < 0.02 * ill.mean() < np.ptp(np.power(np.mean(np.power(rgb.reshape(-1, 3) + 1e-3, 6.0), axis=0), 1 / 6))


def test_run_scores_each_recipe_on_validation_images(gallery_dir, tmp_path):
    out = tmp_path / "colour.json"
    assert main(["--gallery", str(gallery_dir), "--recipes", "12x4x4", "16x6x6 (the default)", "--pairs", "60",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["recipe"] for r in report["rows"]] == ["12x4x4", "16x6x6 (the default)"]
    assert [r["dim"] for r in report["rows"]] == [192, 576]
    assert all(-1 <= r["pearson"] <= 1 and 0 <= r["accuracy"] <= 1 for r in report["rows"])
    assert report["validation_images"] > 0 and report["fit_images"] > report["validation_images"]
