"""benchmarks/busy_backgrounds.py: each classifier folder's colour model with its own recipe, shots as shot and pasted."""

import functools
import json

import numpy as np

from benchmarks.busy_backgrounds import colour_accuracy, main
from cbir.embed.colour import colour_descriptor
from cbir.embed.extractor import FeatureExtractor
from cbir.similarity.classifiers import ClassifierSet


def test_colour_accuracy_reads_the_models_recipe_and_counts_per_colour(gallery, classifier_dir):
    clfs = ClassifierSet.load(classifier_dir)
    photos = [gallery.image(i) for i in range(8)]
    truth = np.asarray(gallery.colours[:8]).astype(str)
    got = colour_accuracy(clfs, gallery.embeddings[:8], photos, truth)
    clf = clfs.get("attribute", "colour")
    d = np.stack([colour_descriptor(p, gallery.colour_spec) for p in photos])
    pred = np.asarray(clf.classes)[clf.probabilities(gallery.embeddings[:8], d).argmax(1)]
    assert got["weighting"] == "border" and got["accuracy"] == round(float((pred == truth).mean()), 4)
    assert set(got["per colour"]) == set(truth)


def test_main_compares_folders_on_shots_as_shot_and_pasted(gallery_dir, classifier_dir, tmp_path, monkeypatch):
    # the fixture gallery's random-init backbone, as it was built
    monkeypatch.setattr("benchmarks.busy_backgrounds.FeatureExtractor", functools.partial(FeatureExtractor, weights="random", seed=0))
    out = tmp_path / "busy.json"
    assert main(["--catalogue", str(gallery_dir), "--demo", str(gallery_dir), "--classifiers", f"a={classifier_dir}",
                 f"b={classifier_dir}", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["catalogue test shots"] > 0 and report["a"] == report["b"]
    assert set(report["a"]) == {"as shot", "pasted on demo floors"}
