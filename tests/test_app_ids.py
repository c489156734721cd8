"""/search answers carry each hit's stable `id` and the query's predicted `type` and `colour`: on the demo, on a
vector store, and through /add and /remove."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

import app
from cbir.gallery.dataset import Gallery
from serving import served

ROOT = Path(__file__).resolve().parent.parent
SHOES = ROOT / "tests" / "data" / "cc0" / "shoes.jpg"  # a demo photo held out of the demo gallery
TOKEN = "ids-token"


def _search(client: Client, path: Path, **options) -> dict:
    return client.predict(handle_file(str(path)), api_name="/search", **options)


def test_demo_answers_carry_file_ids_and_the_predicted_type():
    with served(["--device", "cpu"]) as url:
        res = _search(Client(url, verbose=False), SHOES, k=5)
    g = Gallery.load(app.DEMO_GALLERY)
    stems = {Path(p).stem for p in g.dataset["path"]}
    assert res["method"] == "hybrid"
    assert all(h["id"] in stems and h["id"] == g.ids[h["index"]] for h in res["results"])
    assert res["query"]["type"]["value"] == "shoes" and 0.5 < res["query"]["type"]["probability"] <= 1
    assert abs(sum(res["query"]["type"]["probabilities"].values()) - 1) < 1e-3
    assert set(res["query"]) == {"type", "colour"}  # the demo's colour classifier comes from the Apparel dataset


@pytest.fixture(scope="module")
def live(gallery_dir, classifier_dir, tmp_path_factory):
    folder = shutil.copytree(gallery_dir, tmp_path_factory.mktemp("ids") / "gallery")
    engine = app.build_engine(app.parse_args(["--gallery", str(folder), "--classifiers", str(classifier_dir),
                                              "--device", "cpu"]))
    demo = app.create_app(engine, gallery_dir=folder, admin_token=TOKEN)
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False), engine, folder
    finally:
        demo.close()


def test_ids_and_query_survive_add_and_remove(live, tmp_path):
    client, engine, folder = live
    photo = tmp_path / "my-new-coat.png"
    engine.gallery.image(3).save(photo)
    before = _search(client, photo, k=4)
    assert set(before["query"]) == {"type", "colour"}
    assert before["query"]["colour"]["value"] in before["query"]["colour"]["probabilities"]
    ids_before = list(engine.gallery.ids)
    [new] = client.predict([handle_file(str(photo))], ["red_coat"], TOKEN, api_name="/add")
    assert engine.gallery.ids[new] == "my-new-coat"
    top = _search(client, photo, k=2, method="cosine", dedup=False)["results"]  # it is a copy of row 3
    assert "my-new-coat" in {h["id"] for h in top}
    removed = ids_before[0]
    assert client.predict([0], TOKEN, api_name="/remove") == 1
    assert removed not in set(engine.gallery.ids)
    assert list(engine.gallery.ids) == ids_before[1:] + ["my-new-coat"]  # the others keep their ids
    assert list(Gallery.load(folder).ids) == list(engine.gallery.ids)  # and a restart keeps them
    # /remove takes ids too (and "#row"), the indices above still work; an unknown id is a clear error
    gone = [engine.gallery.ids[1], engine.gallery.ids[4]]
    assert client.predict([gone[0], "#4"], TOKEN, api_name="/remove") == 2
    assert not set(gone) & set(engine.gallery.ids)
    with pytest.raises(Exception, match="no gallery image has the id 'no-such-photo'"):
        client.predict(["no-such-photo"], TOKEN, api_name="/remove")


@pytest.mark.parametrize("store", ["numpy", "faiss:flat"])
def test_a_store_answers_with_the_same_ids(store, gallery_dir, classifier_dir):
    argv = ["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--device", "cpu"]
    query = ROOT / "tests" / "data" / "cc0" / "dress.jpg"
    with served(argv) as plain_url, served(argv + ["--store", store]) as store_url:
        a = _search(Client(plain_url, verbose=False), query, k=6, method="attribute", task="both")
        b = _search(Client(store_url, verbose=False), query, k=6, method="attribute", task="both")
    assert [h["id"] for h in a["results"]] == [h["id"] for h in b["results"]]
    assert a["query"] == b["query"] and a["query"]
