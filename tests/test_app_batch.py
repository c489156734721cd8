"""/search_batch and min_score through gradio_client (the app on the conftest gallery, as in test_app.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from cbir.search.engine import MAX_BATCH  # noqa: E402

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from test_app import client, engine  # noqa: E402,F401  (the same launched app and engine)

PHOTOS = (5, 17, 30)


@pytest.fixture(scope="module")
def photos(engine, tmp_path_factory):
    d = tmp_path_factory.mktemp("batch")
    out = []
    for i in PHOTOS:
        engine.gallery.image(i).save(d / f"photo-{i}.png")
        out.append(d / f"photo-{i}.png")
    (d / "corrupt.png").write_bytes(out[0].read_bytes()[:200])
    return out + [d / "corrupt.png"]


def _files(paths):
    return [handle_file(str(p)) for p in paths]


def _assert_same(answer, alone):
    """The same answer up to float rounding (a batch's matrix product may round scores differently)."""
    assert {k: v for k, v in answer.items() if k != "results"} == {k: v for k, v in alone.items() if k != "results"}
    strip = lambda r: {k: v for k, v in r.items() if k != "score"}  # noqa: E731
    assert [strip(r) for r in answer["results"]] == [strip(r) for r in alone["results"]]
    assert [r["score"] for r in answer["results"]] == pytest.approx([r["score"] for r in alone["results"]], abs=1e-5)


def test_search_batch_gives_each_photo_its_search_answer(client, photos):
    for method, task in (("cosine", "type"), ("logreg", "both")):
        answers = client.predict(_files(photos[:3]), method, task, 6, [-1, PHOTOS[1], -1], api_name="/search_batch")
        assert isinstance(answers, list) and len(answers) == 3
        for path, ex, answer in zip(photos, (-1, PHOTOS[1], -1), answers):
            _assert_same(answer, client.predict(handle_file(str(path)), method, task, 6, ex, api_name="/search"))
        assert PHOTOS[1] not in [r["index"] for r in answers[1]["results"]]  # excluded
    assert answers[0]["excluded_index"] == -1 and answers[1]["excluded_index"] == PHOTOS[1]


def test_search_batch_takes_the_options_of_search(client, engine, photos):
    t = str(engine.gallery.types[PHOTOS[2]])
    box = [0, 0, 20, 20]
    answers = client.predict(_files(photos[:2]), "cosine", "type", 4, types=[t], boxes=[[], box], dedup=False,
                             api_name="/search_batch")
    alone = client.predict(handle_file(str(photos[1])), "cosine", "type", 4, types=[t], box=box, dedup=False,
                           api_name="/search")
    _assert_same(answers[1], alone)
    assert answers[1]["box"] == box and answers[0]["box"] is None
    assert all(r["type"] == t for a in answers for r in a["results"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=0), "between 1 and"),
        (dict(n=MAX_BATCH + 1), "between 1 and"),
        (dict(n=2, exclude=[-1]), "one per photo"),
        (dict(n=2, boxes=[[0, 0, 9, 9]]), "one per photo"),
        (dict(n=2, min_score="high"), "min_score must be a number"),
    ],
)
def test_search_batch_bad_arguments_are_clear_errors(client, photos, kwargs, message):
    n = kwargs.pop("n")
    with pytest.raises(AppError, match=message):
        client.predict(_files([photos[0]] * n), "cosine", "type", 3, api_name="/search_batch", **kwargs)


def test_search_batch_names_the_photo_it_cannot_use(client, photos):
    with pytest.raises(AppError, match="photo 2: Corrupt or truncated"):
        client.predict(_files([photos[0], photos[3]]), "cosine", "type", 3, api_name="/search_batch")


def test_min_score_leaves_out_the_weaker_results(client, photos):
    full = client.predict(handle_file(str(photos[0])), "cosine", "type", 12, dedup=False, api_name="/search")
    scores = [r["score"] for r in full["results"]]
    cut = (scores[4] + scores[5]) / 2
    kept = client.predict(handle_file(str(photos[0])), "cosine", "type", 12, dedup=False, min_score=cut,
                          api_name="/search")
    assert kept["results"] == full["results"][:5] and kept["min_score"] == pytest.approx(cut)
    assert full["min_score"] is None
    none = client.predict(handle_file(str(photos[0])), "cosine", "type", 12, min_score=1.5, api_name="/search")
    assert none["results"] == []
    batch = client.predict(_files(photos[:2]), "cosine", "type", 12, dedup=False, min_score=cut,
                           api_name="/search_batch")
    _assert_same(batch[0], kept)
    assert all(r["score"] >= cut for r in batch[1]["results"])


def test_view_api_documents_batch_and_min_score(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    batch = {p["parameter_name"]: p for p in info["/search_batch"]["parameters"]}
    assert list(batch)[:5] == ["images", "method", "task", "k", "exclude"] and "boxes" in batch
    for endpoint in ("/search", "/search_batch", "/search_text"):  # view_api shows the docstring before Args
        assert "min_score" in [p["parameter_name"] for p in info[endpoint]["parameters"]]
        assert "`min_score` leaves out results scoring below it" in " ".join(info[endpoint]["description"].split())
    assert "one /search answer per photo" in info["/search_batch"]["description"]
    assert [r["label"] for r in info["/search_batch"]["returns"]] == ["answers"]
