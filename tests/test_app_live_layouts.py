"""/add and /remove through gradio_client on every gallery layout: colour_type, type-only (the CC0 demo's),
colour-only and unlabelled. Each adds a labelled image, finds it with the label stored in the columns that
layout has, removes it, and refuses bad input with a clear message (the gallery unchanged)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

TOKEN = "layout-token"
QUERY_INDEX = 3
# layout -> (columns dropped, the column the label is rewritten from, a label to add, (label, colour, type) stored)
LAYOUTS = {
    "colour_type": ((), None, "Red_Dress", ("red_dress", "red", "dress")),
    "type_only": (("colour",), "type", "red_dress", ("red_dress", None, "dress")),
    "colour_only": (("type",), "colour", "red", ("red", "red", None)),
    "unlabelled": (("colour", "type"), "", "", ("", None, None)),
}

LAYOUT_HAS_DESCRIPTORS: dict[str, bool] = {}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def layout(request, gallery, tmp_path_factory):
    """(layout name, client, engine, gallery folder) for a copy of the conftest gallery in that layout."""
    name = request.param
    dropped, relabel, *_ = LAYOUTS[name]
    ds = gallery.dataset.remove_columns(list(dropped)) if dropped else gallery.dataset
    if relabel is not None:
        ds = ds.map(lambda row: {"label": row[relabel] if relabel else ""})
    folder = Gallery(ds, gallery.spec, gallery.colour_spec).save(tmp_path_factory.mktemp(name) / "gallery")
    LAYOUT_HAS_DESCRIPTORS[name] = gallery.colour_spec is not None
    engine = app.build_engine(app.parse_args(["--gallery", str(folder), "--classifiers", "none", "--device", "cpu"]))
    demo = app.create_app(engine, gallery_dir=folder, admin_token=TOKEN)
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True,
                max_file_size=app.MAX_FILE_SIZE)
    try:
        yield name, Client(demo.local_url, verbose=False, download_files=True), engine, folder
    finally:
        demo.close()


@pytest.fixture(scope="module")
def photo(gallery, tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "query.png"
    gallery.image(QUERY_INDEX).save(path)
    return path


def _top(client, photo, k=2):
    return client.predict(handle_file(str(photo)), "cosine", "type", k, -1, dedup=False, api_name="/search")["results"]


def test_add_finds_and_removes_on_every_layout(layout, photo):
    name, client, engine, folder = layout
    _, _, label, (stored, colour, garment) = LAYOUTS[name]
    n = len(engine.gallery)
    assert client.predict([handle_file(str(photo))], [label], TOKEN, api_name="/add") == [n]
    try:
        hits = _top(client, photo)
        assert sorted(h["index"] for h in hits) == sorted([QUERY_INDEX, n])  # the copy scores as the original
        added = next(h for h in hits if h["index"] == n)
        assert (added["label"], added.get("colour"), added.get("type")) == (stored, colour, garment)
        assert len(Gallery.load(folder)) == n + 1  # persisted, and the folder still loads
        if LAYOUT_HAS_DESCRIPTORS[name]:  # the added row gets its colour descriptor; the recipe is kept
            assert engine.gallery.descriptors.shape[0] == n + 1
    finally:
        assert client.predict([n], TOKEN, api_name="/remove") == 1
    assert len(engine.gallery) == n and len(Gallery.load(folder)) == n
    assert [h["index"] for h in _top(client, photo, 1)] == [QUERY_INDEX]


def test_bad_adds_and_removes_are_refused_clearly_on_every_layout(layout, photo, tmp_path):
    _, client, engine, folder = layout
    n = len(engine.gallery)
    with pytest.raises(AppError, match=r"give one label, or one label per image \(2\); got 3"):
        client.predict([handle_file(str(photo))] * 2, ["a", "b", "c"], TOKEN, api_name="/add")
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    with pytest.raises(AppError, match="Not an image file"):
        client.predict([handle_file(str(bad))], None, TOKEN, api_name="/add")
    with pytest.raises(AppError, match="indices must be gallery indices"):
        client.predict([n], TOKEN, api_name="/remove")
    assert len(engine.gallery) == n == len(Gallery.load(folder))
