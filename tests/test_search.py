import numpy as np
import pytest

from cbir.features import BackboneMismatchError, FeatureExtractor
from cbir.images import ImageError
from cbir.search import SearchEngine


@pytest.fixture(scope="module")
def engine(gallery, extractor, training_run):
    return SearchEngine(gallery, extractor, training_run.classifiers)


@pytest.mark.parametrize("method", ["cosine", "euclidean", "logreg", "forest", "attribute"])
@pytest.mark.parametrize("task", ["type", "colour", "both"])
def test_search_returns_k_sorted_hits(engine, gallery, method, task):
    hits = engine.search(gallery.image(3), method, task, k=7)
    assert [h.rank for h in hits] == list(range(1, 8))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for h in hits:
        assert h.label == gallery.labels[h.index] == f"{h.colour}_{h.type}"


def test_gallery_image_finds_itself_first_and_exclusion_drops_it(engine, gallery):
    hits = engine.search(gallery.image(10), "cosine", k=3)
    assert hits[0].index == 10 and hits[0].score == pytest.approx(1.0, abs=1e-5)
    hits = engine.search(gallery.image(10), "cosine", k=3, exclude=10)
    assert 10 not in [h.index for h in hits]


def test_compare_self_is_max_for_cosine(engine, gallery):
    img = gallery.image(0)
    self_score = engine.compare(img, img, "cosine")
    others = [engine.compare(img, gallery.image(i), "cosine") for i in (1, 30, 60)]
    assert self_score == pytest.approx(1.0, abs=1e-5) and all(self_score >= o for o in others)


def test_uploaded_images_get_the_gallery_colour_descriptor(engine, gallery):
    """A query computes its colour descriptor as the gallery did: a gallery image finds itself with score 1."""
    np.testing.assert_allclose(engine.describe(gallery.image_bytes(5)[0]), gallery.descriptors[5], atol=1e-6)
    hits = engine.search(gallery.image_bytes(5)[0], "attribute", "both", k=3)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert engine.compare(gallery.image(5), gallery.image(5), "attribute", "both") == pytest.approx(1.0, abs=1e-5)
    assert engine.default_method() == "attribute"
    assert SearchEngine(gallery, engine.extractor).default_method() == "cosine"


def test_bad_requests_are_clear_errors(engine, gallery):
    with pytest.raises(ValueError, match="k must be"):
        engine.search(gallery.image(0), "cosine", k=0)
    with pytest.raises(ValueError, match="not available"):
        engine.search(gallery.image(0), "svm")
    with pytest.raises(ValueError, match="task must be"):
        engine.search(gallery.image(0), "logreg", task="size")
    with pytest.raises(ImageError):
        engine.search(b"not an image", "cosine")


def test_learned_methods_hidden_without_classifiers(gallery, extractor):
    assert SearchEngine(gallery, extractor).available_methods() == ["cosine", "euclidean"]


def test_engine_refuses_another_backbone(gallery):
    other = FeatureExtractor("test_resnet.r160_in1k", weights="random", seed=1, device="cpu")
    with pytest.raises(BackboneMismatchError):
        SearchEngine(gallery, other)
    SearchEngine(gallery, other, allow_weights_mismatch=True)  # an explicit smoke run


def test_search_vector_matches_search(engine, gallery):
    vec = gallery.embeddings[5]
    a = engine.search_vector(vec, "euclidean", k=5)
    b = engine.search(gallery.image(5), "euclidean", k=5)
    assert [h.index for h in a] == [h.index for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-4)


def test_weights_policy_and_warnings(gallery_dir, classifier_dir, gallery):
    from cbir.features import EmbeddingSpec, WeightsUnavailableError
    from cbir.search import extractor_for, load_engine

    engine = load_engine(str(gallery_dir), str(classifier_dir), device="cpu")
    assert engine.extractor.spec == gallery.spec  # same seeded random init as the gallery
    assert "Randomly initialised weights" in engine.weights_warning()
    with pytest.raises(BackboneMismatchError, match="weights file"):
        extractor_for(gallery.spec, weights="some.pth")
    pretrained = EmbeddingSpec.from_dict({**gallery.spec.to_dict(), "weights": "pretrained", "seed": None})
    with pytest.raises(WeightsUnavailableError):  # offline in tests: refused, never silently random
        extractor_for(pretrained, device="cpu")
    ext, allow = extractor_for(pretrained, random_weights=True, device="cpu")
    assert ext.spec.is_random and allow
    from cbir.data import Gallery

    smoke = SearchEngine(Gallery(engine.gallery.dataset, pretrained), ext, allow_weights_mismatch=True)
    assert smoke.weights_warning().startswith("SMOKE RUN")
