"""benchmarks/ensemble_eval.py: a one-member 'ensemble' reproduces evaluate.py's attribute retrieval exactly."""

import json

import pytest

from benchmarks.ensemble_eval import main
from cbir.similarity.classifiers import PAIRS_FILE, ClassifierSet
from cbir.gallery.dataset import Gallery
from cbir.similarity.evaluation import evaluate
from cbir.similarity.pairs import load_pairs


def test_single_member_matches_evaluate(gallery_dir, classifier_dir, tmp_path):
    out = tmp_path / "ens.json"
    main(["--galleries", str(gallery_dir), "--classifiers", str(classifier_dir), "--queries", "12", "--out", str(out)])
    got = json.loads(out.read_text())["retrieval"]
    g, cs = Gallery.load(gallery_dir), ClassifierSet.load(classifier_dir)
    pairs, split, _ = load_pairs(classifier_dir / PAIRS_FILE)
    want = evaluate(g.embeddings, {t: g.attribute(t) for t in g.tasks}, {t: p["test"] for t, p in pairs.items()},
                    split.test, ["attribute"], cs, n_queries=12, progress=False, descriptors=g.descriptors)["retrieval"]["attribute"]
    for rel in ("type", "colour", "both"):
        for key in ("map@10", "p@1", "p@10"):
            assert got[rel][key] == pytest.approx(want[rel][key], abs=1e-6), (rel, key)


def test_members_from_different_splits_are_refused(gallery_dir, classifier_dir, tmp_path):
    from cbir.similarity.training import train

    other = tmp_path / "other"
    train(Gallery.load(gallery_dir), kinds=["attribute"], n_pairs=200, seed=1, progress=False).save(other)
    with pytest.raises(SystemExit, match="different splits"):
        main(["--galleries", str(gallery_dir), str(gallery_dir), "--classifiers", str(classifier_dir), str(other),
              "--out", str(tmp_path / "x.json")])
