"""A catalogue's metadata in every answer: through each store, /add and /remove, a rebuild; and edits that write
only what they change (cbir.gallery.edits): shards, a deletion journal, replay, compaction, a torn last line."""

import json
import shutil

import numpy as np
import pytest

from cbir.gallery.build import build_gallery_streaming
from cbir.gallery.dataset import Gallery
from cbir.gallery.journal import EDITS_DIR, journal_path, read_journal
from cbir.gallery.live import LiveGallery
from cbir.gallery.sources import read_manifest
from cbir.search.engine import SearchEngine
from cbir.search.loading import load_engine
from cbir.ui.handlers import Handlers, caption

STORES = ["numpy", "faiss:flat", "milvus:{tmp}/meta.db", "server"]


def _uri(store: str, tmp_path, request) -> str:
    """The store's URI; "server" = a fresh collection on the session's real Milvus server (tests/milvus_server.py)."""
    return request.getfixturevalue("milvus_server").uri() if store == "server" else store.format(tmp=tmp_path)


@pytest.fixture(scope="module")
def manifest(image_folder, tmp_path_factory):
    """A CSV manifest of 12 of the synthetic photos: id, image, title, price (no labels)."""
    files = sorted(image_folder.glob("*/*.png"))[::4][:12]
    path = tmp_path_factory.mktemp("manifest") / "products.csv"
    path.write_text("id,image,title,price\n" + "".join(
        f"p{i},{f},Item {i},{10 + i}.5\n" for i, f in enumerate(files)))
    return path


@pytest.fixture(scope="module")
def catalogue_dir(manifest, extractor, tmp_path_factory):
    out = tmp_path_factory.mktemp("catalogue") / "gallery"
    build_gallery_streaming(read_manifest(manifest).records, extractor, out, chunk=5, log=lambda s: None)
    return out


@pytest.fixture
def folder(catalogue_dir, tmp_path):
    return shutil.copytree(catalogue_dir, tmp_path / "gallery")


def _meta(i: int) -> dict:
    return {"title": f"Item {i}", "price": 10 + i + 0.5}


@pytest.mark.parametrize("store", STORES)
def test_every_store_answers_the_items_id_and_metadata(catalogue_dir, store, tmp_path, request):
    engine = load_engine(str(catalogue_dir), store=_uri(store, tmp_path, request), device="cpu")
    hits = engine.search(engine.gallery.image(3), "cosine", k=4)
    assert hits[0].id == "p3" and hits[0].metadata == _meta(3)
    assert all(h.metadata == _meta(int(h.id[1:])) for h in hits)
    assert hits[0].to_dict()["metadata"] == _meta(3) and hits[0].predicted == {}  # tiny backbone: nothing predicted
    assert caption(hits[0]).startswith("Item 3 · ")


@pytest.mark.parametrize("store", STORES)
def test_add_and_remove_keep_metadata_and_ids_through_a_store_and_a_restart(
        folder, extractor, store, tmp_path, request):
    uri = _uri(store, tmp_path, request)
    engine = load_engine(str(folder), store=uri, device="cpu")
    engine.extractor = extractor
    live = LiveGallery(engine, folder)
    image, _ = engine.gallery.image_bytes(5)
    new = live.add([image], ["red_dress"], [{"title": "New dress", "price": 99}])
    assert new == [12] and engine.gallery.metadata(12) == {"title": "New dress", "price": 99}
    assert live.remove([0, 1]) == 2
    hits = engine.search(engine.gallery.image(3), "cosine", k=12)
    by_id = {h.id: h.metadata for h in hits}
    assert by_id["p5"] == _meta(5) and "p0" not in by_id and "p1" not in by_id
    assert [m for i, m in by_id.items() if i.startswith("added-")] == [{"title": "New dress", "price": 99}]
    again = load_engine(str(folder), store=uri, device="cpu")  # a restart replays the journal (not compacted yet)
    assert list(again.gallery.ids) == list(engine.gallery.ids)
    assert [again.gallery.metadata(i) for i in range(len(again.gallery))] == \
        [engine.gallery.metadata(i) for i in range(len(engine.gallery))]


def test_an_edit_writes_only_its_rows_and_a_deletion_record(folder, extractor):
    before = {p: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}
    engine = SearchEngine(Gallery.load(folder), extractor)
    live = LiveGallery(engine, folder)
    live.add([engine.gallery.image_bytes(2)[0]])
    live.remove([4])
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()} == before  # the base is untouched
    entries = read_journal(folder)
    assert [e["op"] for e in entries] == ["add", "remove"] and entries[1]["ids"] == ["p4"]
    shards = [p for p in (folder / EDITS_DIR).iterdir() if p.is_dir()]
    assert len(shards) == 1 and len(Gallery.load(folder)) == 12
    ids = list(engine.gallery.ids)
    assert live.compact() and not (folder / EDITS_DIR).exists()  # on request; the app start does the same
    assert list(Gallery.load(folder).ids) == ids


def test_a_torn_journal_line_is_not_an_edit(folder, extractor):
    engine = SearchEngine(Gallery.load(folder), extractor)
    live = LiveGallery(engine, folder)
    live.remove([0])
    with open(journal_path(folder), "a") as f:
        f.write('{"op": "remove", "ids": ["p1"')  # a crash mid-line
    assert list(Gallery.load(folder).ids)[:2] == ["p1", "p2"]
    live.remove([0])  # the next edit starts on a line of its own
    assert list(Gallery.load(folder).ids)[:1] == ["p2"]
    assert [json.loads(x)["ids"] for x in journal_path(folder).read_text().split("\n") if x.endswith("}")] == [["p0"], ["p1"]]


def test_the_add_endpoint_takes_metadata(folder, extractor, tmp_path):
    from pathlib import Path

    from cbir.ui.errors import get_upload_folder

    engine = SearchEngine(Gallery.load(folder), extractor)
    h = Handlers(engine, LiveGallery(engine, folder), "secret")
    path = Path(get_upload_folder()) / tmp_path.name / "new.png"  # where Gradio keeps uploads
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(engine.gallery.image_bytes(1)[0])
    assert h.add([{"path": str(path)}], None, "secret", {"title": "Scarf"}) == [12]
    assert engine.gallery.metadata(12) == {"title": "Scarf"} and engine.gallery.ids[12] == "new"
    with pytest.raises(Exception, match="metadata must be an object"):
        h.add([{"path": str(path)}], None, "secret", "Scarf")


def test_a_rebuild_gives_the_same_ids_and_metadata(manifest, catalogue_dir, extractor, tmp_path):
    again, _ = build_gallery_streaming(read_manifest(manifest).records, extractor, tmp_path / "g", log=lambda s: None)
    first = Gallery.load(catalogue_dir)
    assert list(again.ids) == list(first.ids)
    assert [again.metadata(i) for i in range(len(again))] == [first.metadata(i) for i in range(len(first))]
    assert np.allclose(again.embeddings, first.embeddings)
