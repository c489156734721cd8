"""The app on a CLIP gallery (tiny random-weight transformers model, hf:<folder>): search by words, image plus words."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from test_app import client  # noqa: E402,F401  (the same launched-app fixture, over this module's CLIP engine)


@pytest.fixture(scope="module")
def engine(clip_gallery_dir):
    return app.build_engine(app.parse_args(["--gallery", str(clip_gallery_dir), "--device", "cpu"]))


@pytest.fixture(scope="module")
def query(engine, tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "query.png"
    engine.gallery.image(3).save(path)
    return path


def test_search_text_returns_k_results_in_the_shape_of_search(client, engine, query):
    # dedup off: the tiny random CLIP embeds the generated images nearly alike, so dedup would collapse them
    res = client.predict("red summer dress", 7, dedup=False, api_name="/search_text")
    like = client.predict(handle_file(str(query)), "cosine", "type", 7, -1, api_name="/search")
    assert set(like) <= set(res) and res["text"] == "red summer dress" and res["method"] == "cosine"
    hits = res["results"]
    assert len(hits) == 7 and [h["rank"] for h in hits] == list(range(1, 8))
    assert all(set(h) == set(like["results"][0]) for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    expected = engine.search_text("red summer dress", 7, dedup=False)
    assert [h["index"] for h in hits] == [h.index for h in expected]


def test_search_text_bad_input_is_a_clear_error(client):
    with pytest.raises(AppError, match="Type a description"):
        client.predict("   ", 5, api_name="/search_text")
    with pytest.raises(AppError, match="k must be between"):
        client.predict("red dress", 0, api_name="/search_text")


def test_search_with_text_is_the_composed_query(client, engine, query):
    n = len(engine.gallery)
    plain = client.predict(handle_file(str(query)), "cosine", "type", n, -1, dedup=False, api_name="/search")
    nudged = client.predict(
        handle_file(str(query)), "cosine", "type", n, -1, dedup=False, text="but in red", api_name="/search"
    )
    vec = engine.compose(engine.embed(query), "but in red")
    g = engine.gallery.embeddings
    cos = g @ vec / np.linalg.norm(g, axis=1) / np.linalg.norm(vec)
    assert [h["index"] for h in nudged["results"]][:3] == list(np.argsort(-cos, kind="stable")[:3])
    assert [h["index"] for h in nudged["results"]] != [h["index"] for h in plain["results"]]


def test_ui_search_with_words_only_and_with_an_image(engine, query):
    h = app._Handlers(engine)
    items, table, result, *_ = h.ui_search(None, "cosine", "type", 4, None, dedup=False, text="blue shoes")
    assert len(items) == 4 and result["text"] == "blue shoes"
    assert [r["index"] for r in result["results"]] == [x.index for x in engine.search_text("blue shoes", 4, dedup=False)]
    with pytest.raises(Exception, match="No image"):
        h.ui_search(None, "cosine", "type", 4, None, text="  ")
