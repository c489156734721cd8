"""benchmarks/pair_subset.py: a balanced sample of a classifier folder's pairs, kept on the parent split, and the
same rows whichever way the subset gallery is made (embedded from the linked images, or selected)."""

import json

import numpy as np
import pytest

from benchmarks.pair_subset import main, subset_pairs
from cbir.similarity.classifiers import PAIRS_FILE, ClassifierSet
from cbir.gallery.dataset import Gallery, build_gallery, scan_image_folder
from cbir.similarity.pairs import load_pairs


def test_subset_pairs_are_balanced_reindexed_and_keep_the_parent_split(training_run):
    pairs, split = training_run.pairs, training_run.split
    images, local, sub = subset_pairs(pairs, split, {"train": 20, "test": 10}, seed=0)
    assert np.all(np.diff(images) > 0)
    for task, parts in local.items():
        for part, p in parts.items():
            assert len(p) == {"train": 20, "test": 10}[part] and p.n_positive == len(p) // 2
            parent_side = split.train if part == "train" else split.test
            assert np.isin(images[p.left], parent_side).all() and np.isin(images[p.right], parent_side).all()
            # each sampled pair is a pair of the parent, with its label
            parent = {(a, b): y for a, b, y in zip(pairs[task][part].left, pairs[task][part].right, pairs[task][part].label)}
            assert all(parent[(images[a], images[b])] == y for a, b, y in zip(p.left, p.right, p.label))
    assert set(images[sub.train]) | set(images[sub.test]) == set(images)
    with pytest.raises(ValueError, match="cannot take"):
        subset_pairs(pairs, split, {"train": 10_000, "test": 10}, seed=0)


def test_pick_select_train_round_trip(gallery_dir, classifier_dir, image_folder, extractor, tmp_path):
    sub = tmp_path / "subset"
    assert main(["pick", "--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--images", str(image_folder),
                 "--train-pairs", "20", "--test-pairs", "10", "--out", str(sub)]) == 0
    meta = json.loads((sub / "subset.json").read_text())
    parent = Gallery.load(gallery_dir)
    # embedding the linked images gives the parent's rows, in the parent's order
    g, errors = build_gallery(scan_image_folder(sub / "images"), extractor, batch_size=16, progress=False)
    assert not errors and len(g) == meta["images"]
    np.testing.assert_allclose(g.embeddings, parent.embeddings[meta["parent_indices"]], atol=1e-5)
    assert main(["select", "--gallery", str(gallery_dir), "--subset", str(sub), "--out", str(tmp_path / "sel")]) == 0
    sel = Gallery.load(tmp_path / "sel")
    assert np.array_equal(sel.embeddings, parent.embeddings[meta["parent_indices"]])
    assert main(["train", "--gallery", str(tmp_path / "sel"), "--subset", str(sub), "--kinds", "logreg",
                 "--out", str(tmp_path / "clf")]) == 0
    cs = ClassifierSet.load(tmp_path / "clf")
    assert {k for k, _ in cs.classifiers} == {"logreg"}
    p, split, _ = load_pairs(tmp_path / "clf" / PAIRS_FILE)
    assert len(split.train) + len(split.test) == len(sel)
    with pytest.raises(ValueError, match="not the subset's gallery"):
        main(["train", "--gallery", str(gallery_dir), "--subset", str(sub), "--out", str(tmp_path / "bad")])
