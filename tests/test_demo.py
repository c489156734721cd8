"""The demo builder on a small type-only folder (the CC0 layout) with the tiny random-init model, plus the
committed demo itself: real Lite2 embeddings, a type per image and no colour, classifiers for both tasks."""

import json
from pathlib import Path

import numpy as np
import pytest

from cbir.similarity.classifiers import PAIRS_FILE, ClassifierSet
from cbir.gallery.dataset import Gallery, scan_image_folder
from cbir.train.demo import ALWAYS_HELD_OUT, build_demo, choose_holdout
from cbir.gallery.demo import DEMO_CLASSIFIERS, DEMO_DIR, DEMO_GALLERY, DEMO_MODEL, HOLDOUT_FILE
from cbir.similarity.evaluation import evaluate
from cbir.similarity.pairs import load_pairs
from cbir.gallery.synthetic import garment_image
from tests.conftest import TINY_MODEL

TYPES = ("dress", "pants", "shoes")


@pytest.fixture(scope="module")
def type_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cc0") / "images"
    for t in TYPES:
        (root / t).mkdir(parents=True)
        for i in range(20):
            colour = ("red", "blue", "black")[i % 3]
            garment_image(colour, t, size=64, seed=i).save(root / t / f"{i:02d}.png")
    return root


def test_holdout_is_seeded_per_type_and_keeps_the_test_photos(type_folder):
    records = scan_image_folder(type_folder)
    held = choose_holdout(records, per_type=2, seed=0)
    assert held == choose_holdout(records, per_type=2, seed=0)
    assert [h.split("/")[0] for h in held] == sorted(t for t in TYPES for _ in range(2))
    assert all(p.split("/")[0] in ("dress", "shoes", "tshirt") for p in ALWAYS_HELD_OUT)


def test_build_demo_picks_a_type_source_and_takes_colour_from_the_apparel_classifiers(type_folder, classifier_dir, tmp_path):
    gallery, report, written = build_demo(
        type_folder, classifier_dir, out_dir=tmp_path, model=TINY_MODEL, weights="random", per_type_holdout=2, n_pairs=100,
        progress=False,
    )
    assert len(gallery) == 3 * 18 and gallery.tasks == ("type",)
    held = json.loads((tmp_path / HOLDOUT_FILE).read_text())["held_out"]
    assert set(held) == set(report["held_out"]) and not set(held) & set(Gallery.load(tmp_path / "gallery").dataset["path"])
    clf = ClassifierSet.load(tmp_path / "classifiers")
    clf.check_backbone(gallery.spec, gallery.colour_spec)
    for kind, comp in report["type_source"].items():
        card = clf.get(kind, "type").card
        better = max(("clothing-cc0", "apparel-images"), key=lambda s: comp[s]["roc_auc"])
        assert comp["chosen"] == better and card["source_comparison"]["chosen"] == better
        assert card["metrics"] == comp[better] and card["metrics_source"] == "demo (CC0) held-out type pairs"
        assert "Apparel Images Dataset" in clf.get(kind, "colour").card["train_source"]
    assert all(Path(p).exists() for p in written)

    # evaluate.py's path on a gallery without colour: type pairs only, retrieval judged by type only
    pairs, split, meta = load_pairs(tmp_path / "classifiers" / PAIRS_FILE)
    assert set(pairs) == {"type"} and meta["gallery_size"] == len(gallery)
    attributes = {t: gallery.attribute(t) for t in gallery.tasks}
    res = evaluate(gallery.embeddings, attributes, {"type": pairs["type"]["test"]}, split.test, ["cosine", "logreg"],
                   clf, n_queries=8, progress=False)
    assert set(res["retrieval"]["logreg"]) == {"type"} and set(res["correlation"]["cosine"]) == {"type", "overall"}


@pytest.mark.skipif(not (DEMO_DIR / HOLDOUT_FILE).is_file(), reason="no committed demo")
def test_committed_demo_is_real_and_type_only():
    g = Gallery.load(DEMO_GALLERY)
    assert not g.spec.is_random and g.spec.model == DEMO_MODEL and g.spec.weights_sha256
    assert g.tasks == ("type",) and set(g.types) == {
        "dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "tshirt"}
    held = json.loads((DEMO_DIR / HOLDOUT_FILE).read_text())["held_out"]
    assert set(ALWAYS_HELD_OUT) <= set(held) and not set(held) & set(g.dataset["path"])
    assert len(g) + len(held) == 600 and np.isfinite(g.embeddings).all()
    clf = ClassifierSet.load(DEMO_CLASSIFIERS)
    clf.check_backbone(g.spec, g.colour_spec)
    assert {t for _, t in clf.classifiers} == {"type", "colour"}
