import numpy as np
import pytest

from cbir.embed.spec import BackboneMismatchError

from cbir.embed.extractor import FeatureExtractor
from cbir.images import ImageError
from cbir.search.engine import SearchEngine


@pytest.fixture(scope="module")
def engine(gallery, extractor, training_run):
    return SearchEngine(gallery, extractor, training_run.classifiers)


@pytest.mark.parametrize("method", ["cosine", "euclidean", "logreg", "forest", "attribute", "hybrid"])
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
    assert engine.default_method() == "hybrid"
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
    from cbir.embed.spec import EmbeddingSpec
    from cbir.embed.extractor import WeightsUnavailableError
    from cbir.search.loading import extractor_for, load_engine

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
    from cbir.gallery.dataset import Gallery

    smoke = SearchEngine(Gallery(engine.gallery.dataset, pretrained), ext, allow_weights_mismatch=True)
    assert smoke.weights_warning().startswith("SMOKE RUN")


def test_filters_mask_before_top_k(engine, gallery):
    hits = engine.search(gallery.image(0), "cosine", k=5, filters={"type": ["shoes"], "colour": ["red", "blue"]})
    assert len(hits) == 5 and all(h.type == "shoes" and h.colour in ("red", "blue") for h in hits)
    n_match = int(((gallery.types == "shoes") & (gallery.colours == "green")).sum())
    hits = engine.search(gallery.image(0), "euclidean", k=50, filters={"type": "shoes", "colour": "green"})
    assert len(hits) == n_match and [h.rank for h in hits] == list(range(1, n_match + 1))
    with pytest.raises(ValueError, match="no type 'hat' in this gallery; it has: dress, pants"):
        engine.search(gallery.image(0), k=3, filters={"type": ["hat"]})
    assert len(engine.search(gallery.image(0), k=4, filters={"type": [], "colour": []})) == 4
    with pytest.raises(ValueError, match="label columns"):
        engine.search(gallery.image(0), k=3, filters={"size": ["M"]})


def test_dedup_collapses_identical_rows_with_a_copy_count(gallery, extractor):
    import datasets

    from cbir.gallery.dataset import Gallery

    dup = Gallery(datasets.concatenate_datasets([gallery.dataset, gallery.dataset.select([3, 3])]), gallery.spec)
    engine = SearchEngine(dup, extractor)
    plain = engine.search_vector(gallery.embeddings[3], "cosine", k=5)
    assert sorted(h.index for h in plain[:3]) == [3, len(gallery), len(gallery) + 1]
    assert all(h.copies == 1 for h in plain)
    # Random-init features are all alike, so only byte-identical rows count as copies here (threshold > 1).
    collapsed = engine.search_vector(gallery.embeddings[3], "cosine", k=5, dedup=True, dedup_threshold=1.01)
    assert len(collapsed) == 5 and collapsed[0].index in (3, len(gallery), len(gallery) + 1)
    assert collapsed[0].copies == 3 and all(h.copies == 1 for h in collapsed[1:])
    assert len({dup.hashes[h.index] for h in collapsed}) == 5
    assert [h.index for h in collapsed[1:]] == [h.index for h in engine.search_vector(
        gallery.embeddings[3], "cosine", k=7)[3:7]]
    assert collapsed[0].to_dict()["copies"] == 3
    # A near-duplicate threshold of -1 makes everything one group: a single result standing for all.
    everything = engine.search_vector(gallery.embeddings[3], "cosine", k=5, dedup=True, dedup_threshold=-1.0)
    assert len(everything) == 1 and everything[0].copies == len(dup)


def test_near_duplicates_collapse_only_for_pretrained_features(engine, gallery):
    assert engine.dedup_threshold is None  # random-init gallery: sha1 only, else the results would all merge
    hits = engine.search_vector(gallery.embeddings[0], "cosine", k=10, dedup=True)
    assert len(hits) == 10 and all(h.copies == 1 for h in hits)
    merged = engine.search_vector(gallery.embeddings[0], "cosine", k=10, dedup=True, dedup_threshold=0.5)
    assert sum(h.copies for h in merged) >= 10 and any(h.copies > 1 for h in merged)


def test_feedback_ranks_positives_higher_and_negatives_lower(engine, gallery, method="cosine"):
    query = int(np.flatnonzero(gallery.types == "dress")[0])
    vec = gallery.embeddings[query]
    before = engine.search_vector(vec, method, "type", k=10, exclude=query)
    pos = np.flatnonzero(gallery.types == "shoes")[:6]
    neg = np.array([h.index for h in before if h.type != "dress"])
    refined = engine.refine(vec, positives=pos.tolist(), negatives=neg.tolist())

    def mean_rank(v, rows):
        order = np.argsort(-engine.scores(v, method, "type"), kind="stable")
        return np.flatnonzero(np.isin(order, rows)).mean()

    assert mean_rank(refined, pos) < mean_rank(vec, pos)
    assert mean_rank(refined, neg) > mean_rank(vec, neg)
    for other in ("euclidean", "logreg", "forest"):  # every method searches with the refined vector
        assert len(engine.search_vector(refined, other, "both", k=10, exclude=query)) == 10
    np.testing.assert_array_equal(engine.refine(vec), vec)
    with pytest.raises(ValueError, match="positives must be gallery indices"):
        engine.refine(vec, positives=[len(gallery)])


def test_explain_returns_overlays_and_the_search_score(engine, gallery):
    hit = engine.search(gallery.image(2), "euclidean", k=2)[1]
    e, score = engine.explain(gallery.image(2), hit.index, "euclidean")
    assert score == pytest.approx(hit.score, rel=1e-4)
    assert e.overlay_a.size == e.overlay_b.size and e.heat_a.ndim == 2
    with pytest.raises(ValueError, match="index must be a gallery index"):
        engine.explain(gallery.image(2), len(gallery))


@pytest.mark.parametrize("method,task", [("cosine", "type"), ("euclidean", "type"), ("logreg", "both"),
                                         ("attribute", "both")])
def test_search_batch_answers_each_image_as_search_does(engine, gallery, method, task):
    images = [gallery.image(i) for i in (2, 9, 40)]
    batch = engine.search_batch(images, method, task, k=6, exclude=[-1, 9, -1], dedup=True)
    assert len(batch) == 3
    for im, ex, hits in zip(images, (-1, 9, -1), batch):
        one = engine.search(im, method, task, k=6, exclude=ex, dedup=True)
        assert [h.index for h in hits] == [h.index for h in one]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in one], rtol=1e-4, atol=1e-6)
    assert 9 not in [h.index for h in batch[1]]


def test_search_batch_scores_the_gallery_in_one_matrix_product(engine, gallery, monkeypatch):
    calls = []
    real = engine.score_matrix
    monkeypatch.setattr(engine, "score_matrix", lambda q, *a, **kw: calls.append(np.shape(q)) or real(q, *a, **kw))
    engine.search_batch([gallery.image(i) for i in range(4)], "cosine", k=3, dedup=True)
    assert calls == [(4, gallery.embeddings.shape[1])]


def test_search_batch_refuses_bad_batches(engine, gallery):
    from cbir.search.engine import MAX_BATCH

    with pytest.raises(ValueError, match="between 1 and"):
        engine.search_batch([], "cosine")
    with pytest.raises(ValueError, match="between 1 and"):
        engine.search_batch([gallery.image(0)] * (MAX_BATCH + 1), "cosine")
    with pytest.raises(ValueError, match="one gallery index"):
        engine.search_batch([gallery.image(0)] * 2, "cosine", exclude=[1])


@pytest.mark.parametrize("dedup", [False, True])
def test_min_score_leaves_out_the_hits_below_it(engine, gallery, dedup):
    full = engine.search(gallery.image(7), "cosine", k=20, dedup=dedup)
    cut = (full[3].score + full[4].score) / 2
    hits = engine.search(gallery.image(7), "cosine", k=20, dedup=dedup, min_score=cut)
    assert [h.index for h in hits] == [h.index for h in full[:4]]
    assert engine.search(gallery.image(7), "cosine", k=20, min_score=full[0].score + 1) == []
    assert len(engine.search_vector(gallery.embeddings[7], "cosine", k=20, min_score=-1.0)) == 20
    with pytest.raises(ValueError, match="min_score"):
        engine.search(gallery.image(7), "cosine", min_score=float("nan"))


def test_the_colour_descriptor_is_computed_only_for_methods_that_use_it(engine, gallery, monkeypatch):
    assert engine.needs_descriptor("attribute", "both") and not engine.needs_descriptor("cosine")
    assert not engine.needs_descriptor("logreg", "type")  # pair classifiers see embeddings only
    want = engine.search(gallery.image(5), "attribute", "both", k=3)

    def forbidden(image):
        raise AssertionError("describe() called for a method that ignores colour descriptors")

    monkeypatch.setattr(engine, "describe", forbidden)
    engine.search(gallery.image(5), "cosine", k=3)
    engine.search_batch([gallery.image(5)] * 2, "logreg", "both", k=3)
    engine.compare(gallery.image(5), gallery.image(6), "euclidean")
    with pytest.raises(AssertionError, match="describe"):
        engine.search(gallery.image(5), "attribute", "both", k=3)
    assert want[0].index == 5


def test_embed_batch_is_one_forward_pass_except_on_openvino(engine, monkeypatch):
    from types import SimpleNamespace

    seen = []
    monkeypatch.setattr(engine.extractor, "embed_images",
                        lambda images, batch_size=32: seen.append(batch_size) or np.zeros((len(images), 4)))
    engine.embed_batch(["a", "b", "c"])
    monkeypatch.setattr(engine.extractor, "runtime", SimpleNamespace(name="openvino"))
    engine.embed_batch(["a", "b", "c"])
    assert seen == [3, 1]


# --- one options object, one query builder, one answer shape --------------------------------------------------


def test_search_options_are_one_keyword_only_value():
    from cbir.search.options import SearchOptions

    with pytest.raises(TypeError):
        SearchOptions("cosine")  # keyword-only
    o = SearchOptions(k=3, filters={"type": "shoes", "colour": []})
    assert o.filters == {"type": ["shoes"]} and o.method is None and o.excludes(2) == [-1, -1]
    assert SearchOptions.of(o, method=None, task=None, dedup=True) == o.replace(dedup=True)  # None keeps the base's
    with pytest.raises(TypeError, match="unknown search options"):
        SearchOptions.of(o, kk=3)
    with pytest.raises(ValueError, match="one gallery index"):
        SearchOptions(exclude=[1, 2]).excludes(3)


def test_a_query_is_built_once_with_each_descriptor_computed_once(engine, gallery, monkeypatch):
    calls = []
    real = engine.describe
    monkeypatch.setattr(engine, "describe", lambda im: calls.append(1) or real(im))
    q = engine.query([gallery.image(4), gallery.image(8)], boxes=[None, [0, 0, 40, 40]], method="hybrid", task="type",
                     positives=[1])
    assert q.vectors.shape == (2, gallery.embeddings.shape[1]) and q.descriptors.shape[0] == 2
    assert len(calls) == 2  # one descriptor per photo, shared by the method and the prediction
    assert q.predictions[0]["type"]["value"] and q.boxes == [None, [0.0, 0.0, 40.0, 40.0]]
    plain = engine.query([gallery.image(4)], method="cosine")
    assert plain.descriptors is None or engine.needs_descriptor("cosine")
    assert not np.allclose(q.vectors[0], plain.vectors[0])  # the feedback moved it
    with pytest.raises(ImageError, match="photo 2: "):
        engine.query([gallery.image(0), b"not an image"])


def test_answer_has_the_api_shape_with_results(engine, gallery):
    ans = engine.answer(gallery.image_bytes(6)[0], "cosine", k=4, filters={"type": [gallery.types[6]]}, box=None)
    assert set(ans) >= {"method", "method_label", "task", "k", "excluded_index", "filters", "dedup", "positives",
                        "negatives", "box", "min_score", "query", "results"}
    assert ans["method"] == "cosine" and len(ans["results"]) == 4 and ans["filters"] == {"type": [gallery.types[6]]}
    assert all(r["type"] == gallery.types[6] for r in ans["results"])


# --- words without a text encoder ------------------------------------------------------------------------------


def test_words_name_types_and_colours_with_plurals_and_synonyms():
    from cbir.search.words import UnknownWords, parse

    known = {"type": ["dress", "pants", "shoes", "outwear", "tshirt", "longsleeve"],
             "colour": ["black", "blue", "red"]}
    assert parse("black sneakers", known) == {"type": "shoes", "colour": "black"}
    assert parse("Jeans", known) == parse("a pair of trousers", known) == {"type": "pants"}
    assert parse("boots", known) == {"type": "shoes"} and parse("navy", known) == {"colour": "blue"}
    assert parse("jacket", known) == parse("coats", known) == {"type": "outwear"}
    assert parse("red T-shirts", known) == {"type": "tshirt", "colour": "red"}
    assert parse("long sleeve", known) == {"type": "longsleeve"}
    with pytest.raises(UnknownWords, match="does not know 'tuxedo'.*Types: dress"):
        parse("tuxedo", known)
    with pytest.raises(UnknownWords, match="names no type or colour"):
        parse("the", known)
    with pytest.raises(UnknownWords, match="does not know 'hats'"):  # a type the models do not know is no word
        parse("hats", known)


def test_search_words_ranks_by_the_attribute_probabilities(engine, gallery):
    hits, words = engine.search_words("blue shoes", k=5)
    assert words == {"type": "shoes", "colour": "blue"}
    clf = {t: engine.classifiers.get("attribute", t) for t in words}
    p = np.prod([clf[t].probabilities(gallery.embeddings, gallery.descriptors)[:, list(clf[t].classes).index(v)]
                 for t, v in words.items()], axis=0)
    assert [h.index for h in hits] == list(np.argsort(-p, kind="stable")[:5])
    assert [h.index for h in engine.search_text("blue shoes", 5)] == [h.index for h in hits]
    assert all(h.type == "shoes" for h in engine.search_text("sneakers", 3, filters={"type": ["shoes"]}))
    with pytest.raises(ValueError, match="Type a garment type"):
        engine.search_text("  ")
