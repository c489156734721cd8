"""cbir.similarity.whitening: learned whitening finds edited copies that plain cosine confuses; it round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec
from cbir.index import l2_normalize
from cbir.similarity.classifiers import MANIFEST, ClassifierSet
from cbir.similarity.whitening import WHITENING_FILE, Whitening, fit_whitening, instance_vectors


def _photos_and_copies(n: int, dim: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Photos of 5 look-alike kinds plus copies whose edit moves them a lot along a few 'nuisance' axes (as a
    crop or JPEG does), so a copy is often nearer another photo of its kind than its own."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5, dim))[rng.integers(0, 5, n)] + 0.2 * rng.normal(size=(n, dim))
    nuisance = np.linalg.qr(rng.normal(size=(dim, 4)))[0]
    copies = x + 2.0 * rng.normal(size=(n, 4)) @ nuisance.T + 0.02 * rng.normal(size=(n, dim))
    return x.astype(np.float32), copies.astype(np.float32)


def _r1(queries: np.ndarray, gallery: np.ndarray) -> float:
    return float(((queries @ gallery.T).argmax(1) == np.arange(len(queries))).mean())


def test_learned_whitening_finds_the_copies_cosine_confuses():
    x, copies = _photos_and_copies(600)
    fit, test = slice(0, 400), slice(400, 600)  # learnt on some photos, measured on others
    w = fit_whitening(x[fit], x[fit], copies[fit], dim=32)
    raw = _r1(l2_normalize(copies[test]), l2_normalize(x[test]))
    whitened = _r1(w.transform(copies[test]), w.transform(x[test]))
    assert raw < 0.8 and whitened > 0.95
    assert w.dim == 32 and w.card["photos"] == 400 and w.card["copies"] == 400
    np.testing.assert_allclose(np.linalg.norm(w.transform(x[:5]), axis=1), 1.0, rtol=1e-5)


def test_the_dimension_is_capped_by_the_embedding_and_too_few_copies_are_refused():
    x, copies = _photos_and_copies(50, dim=16)
    assert fit_whitening(x, x, copies, dim=768).dim == 16
    with pytest.raises(ValueError, match="at least 2"):
        fit_whitening(x, x[:1], copies[:1])


def test_without_whitening_the_instance_vectors_are_the_unit_embeddings():
    x, _ = _photos_and_copies(5)
    np.testing.assert_allclose(instance_vectors(None, x), l2_normalize(x), rtol=1e-6)


def test_save_and_load_keep_the_transform_and_card(tmp_path):
    x, copies = _photos_and_copies(80, dim=16)
    w = fit_whitening(x, x, copies, dim=8, card={"backbone": {"model": "m"}})
    back = Whitening.load(w.save(tmp_path))
    np.testing.assert_allclose(back.transform(x), w.transform(x), atol=5e-3)  # saved in float16
    np.testing.assert_array_equal(Whitening.load(back.save(tmp_path)).transform(x), back.transform(x))
    assert back.card == w.card and (tmp_path / WHITENING_FILE).is_file()


def test_a_classifier_set_carries_its_whitening_through_save_and_load(training_run, gallery, tmp_path):
    clf = training_run.classifiers
    assert clf.whitening is not None and clf.whitening.card["copies"] == len(training_run.split.train)
    clf.save(tmp_path)
    assert json.loads((tmp_path / MANIFEST).read_text())["whitening"] == WHITENING_FILE
    back = ClassifierSet.load(tmp_path)
    np.testing.assert_allclose(back.whitening.transform(gallery.embeddings[:4]), clf.whitening.transform(gallery.embeddings[:4]),
                               atol=2e-3)
    back.check_backbone(gallery.spec, gallery.colour_spec)
    other = EmbeddingSpec.from_dict({**gallery.spec.to_dict(), "model": "another_model"})
    only_whitening = ClassifierSet({}, back.whitening)  # the whitening's own backbone check, no classifier's
    only_whitening.check_backbone(gallery.spec, gallery.colour_spec)
    with pytest.raises(BackboneMismatchError):
        only_whitening.check_backbone(other, gallery.colour_spec)
