"""Stable item ids on every hit and the query's predicted attributes in the engine's answer (issue 18 item 4):
on the tiny gallery, through add and remove, on each vector store, and on the committed demo."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cbir.gallery.dataset import Gallery, derive_ids, unique_ids
from cbir.gallery.demo import DEMO_CLASSIFIERS, DEMO_GALLERY
from cbir.gallery.live import LiveGallery
from cbir.search.engine import SearchEngine
from cbir.search.loading import load_engine


@pytest.fixture(scope="module")
def engine(gallery, extractor, training_run):
    return SearchEngine(gallery, extractor, training_run.classifiers)


def test_ids_come_from_the_paths_and_are_unique(gallery):
    paths = gallery.dataset["path"]  # 000.png, 001.png ... in every class folder: names repeat, folders kept
    assert list(gallery.ids) == [str(Path(p).with_suffix("")) for p in paths] and len(set(gallery.ids)) == len(gallery)


def test_a_repeated_name_keeps_its_folder_and_then_a_counter():
    paths = ["red_dress/9bfb.jpg", "red_shoes/9bfb.jpg", "a/x.png", "a/x.jpg", "b/y.jpg"]
    assert derive_ids(paths) == ["red_dress/9bfb", "red_shoes/9bfb", "a/x", "a/x#2", "y"]
    assert unique_ids(["y", "z"], taken={"y"}) == ["y#2", "z"]


def test_answer_carries_ids_and_the_query_attributes(engine, gallery):
    ans = engine.answer(gallery.image_bytes(4)[0], k=5)
    json.dumps(ans)  # JSON-able as it is
    assert ans["method"] == "hybrid" and ans["task"] == "type"
    assert [h["id"] for h in ans["results"]] == [str(gallery.ids[h["index"]]) for h in ans["results"]]
    assert ans["results"][0]["id"] == gallery.ids[4]
    v, d = gallery.embeddings[4], gallery.descriptors[4]
    for task in ("type", "colour"):
        q = ans["query"][task]
        clf = engine.classifiers.get("attribute", task)
        p = clf.probabilities(v[None], d[None])[0]
        assert q["value"] == clf.classes[int(np.argmax(p))] and q["probability"] == pytest.approx(p.max(), abs=1e-4)
        assert set(q["probabilities"]) == set(clf.classes) and sum(q["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert SearchEngine(gallery, engine.extractor).answer(gallery.image(4), k=2)["query"] == {}  # no classifiers


def test_ids_survive_remove_and_add(gallery_dir, extractor, training_run, tmp_path):
    folder = shutil.copytree(gallery_dir, tmp_path / "gallery")
    eng = SearchEngine(Gallery.load(folder), extractor, training_run.classifiers)
    lg = LiveGallery(eng, folder)
    by_hash = dict(zip(eng.gallery.hashes, eng.gallery.ids))
    data, suffix = eng.gallery.image_bytes(3)
    gone = eng.gallery.ids[3]
    assert lg.remove([0, 3]) == 2
    assert gone not in set(eng.gallery.ids)
    assert all(by_hash[h] == i for h, i in zip(eng.gallery.hashes, eng.gallery.ids))  # the others keep theirs
    path = tmp_path / f"restored{suffix}"
    path.write_bytes(data)
    first, second = lg.add([str(path), str(path)], ["red_dress"])
    assert eng.gallery.ids[first] == "restored" and eng.gallery.ids[second] == "restored#2"
    [blob] = lg.add([data])
    assert eng.gallery.ids[blob].startswith("added-") and len(set(eng.gallery.ids)) == len(eng.gallery)
    reloaded = Gallery.load(folder)
    assert list(reloaded.ids) == list(eng.gallery.ids)  # persisted as the id column
    hits = eng.search(data, "hybrid", "both", k=4)  # added rows have colour descriptors: colour methods still work
    assert {h.id for h in hits[:3]} == {"restored", "restored#2", eng.gallery.ids[blob]}  # the three copies first
    assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[3].score < hits[2].score


@pytest.mark.parametrize("store", ["numpy", "faiss", "milvus"])
def test_a_store_serves_the_same_ids(gallery, extractor, training_run, tmp_path, store):
    pytest.importorskip({"numpy": "numpy", "faiss": "faiss", "milvus": "milvus_lite"}[store])
    from cbir.stores import open_gallery_store

    plain = SearchEngine(gallery, extractor, training_run.classifiers)
    on_store = SearchEngine(gallery, extractor, training_run.classifiers)
    uri = f"milvus:{tmp_path / 'g.db'}" if store == "milvus" else store
    on_store.store = open_gallery_store(uri, gallery, training_run.classifiers, plain.available_methods(), progress=False)
    query = gallery.image_bytes(9)[0]
    for method in ("cosine", "attribute"):
        a, b = plain.answer(query, method, "both", k=6), on_store.answer(query, method, "both", k=6)
        assert [h["id"] for h in b["results"]] == [h["id"] for h in a["results"]] and a["query"] == b["query"]
        assert b["results"][0]["id"] == gallery.ids[9]


def test_the_demo_answers_with_file_ids_and_predicted_type():
    eng = load_engine(str(DEMO_GALLERY), str(DEMO_CLASSIFIERS), device="cpu")
    g = eng.gallery
    assert eng.default_method() == "hybrid"
    for i in (0, 100, 250, 400):
        ans = eng.answer(g.image_bytes(i)[0], k=10)
        assert ans["results"][0]["id"] == Path(g.dataset[i]["path"]).stem == g.ids[i]
        assert ans["query"]["type"]["value"] == g.types[i] and "colour" in ans["query"]
        scores = [h["score"] for h in ans["results"]]
        assert all(a > b for a, b in zip(scores, scores[1:])) and scores[-1] < 0.99  # strictly ordered, not saturated
