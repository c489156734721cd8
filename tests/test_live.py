import os
import shutil

import numpy as np
import pytest

from cbir.gallery import live
from cbir.gallery.dataset import Gallery
from cbir.images import ImageError
from cbir.gallery.live import AdminTokenError, LiveGallery, check_token, recover, save_atomically, split_label
from cbir.search.engine import SearchEngine


@pytest.fixture
def folder(gallery_dir, tmp_path):
    return shutil.copytree(gallery_dir, tmp_path / "gallery")


@pytest.fixture
def engine(folder, extractor):
    return SearchEngine(Gallery.load(folder), extractor)


def test_token_is_required_and_named():
    with pytest.raises(AdminTokenError, match="CBIR_ADMIN_TOKEN"):
        check_token("x", None)
    with pytest.raises(AdminTokenError, match="Wrong or missing admin token.*CBIR_ADMIN_TOKEN"):
        check_token("wrong", "secret")
    with pytest.raises(AdminTokenError, match="CBIR_ADMIN_TOKEN"):
        check_token(None, "secret")
    check_token("secret", "secret")


def test_split_label():
    assert split_label("Red_Dress") == ("red_dress", "red", "dress")
    assert split_label("dress") == ("dress", "", "dress")
    assert split_label(None) == ("", "", "")


def _results(engine, image, k=8):
    return [(engine.gallery.hashes[h.index], h.label, round(h.score, 5)) for h in engine.search(image, k=k)]


def test_remove_then_readd_gives_the_same_results_and_persists(engine, folder, gallery, tmp_path):
    lg = LiveGallery(engine, folder)
    query = gallery.image(7)
    before = _results(engine, query)
    n = len(engine.gallery)
    target = engine.search(query, k=2)[1].index
    data, suffix = engine.gallery.image_bytes(target)
    label = engine.gallery.labels[target]
    assert lg.remove([target]) == 1 and len(engine.gallery) == n - 1
    assert engine.gallery.hashes[target] != gallery.hashes[target]  # later rows moved up
    assert len(Gallery.load(folder)) == n - 1  # persisted
    path = tmp_path / f"again{suffix}"
    path.write_bytes(data)
    assert lg.add([str(path)], [label]) == [n - 1]
    assert _results(engine, query) == before
    reloaded = SearchEngine(Gallery.load(folder), engine.extractor)
    assert _results(reloaded, query) == before
    assert not list(folder.parent.glob(".gallery.*"))  # no leftovers


def test_add_several_with_one_label_and_bad_input_changes_nothing(engine, folder, gallery, tmp_path):
    lg = LiveGallery(engine, folder)
    n = len(engine.gallery)
    blobs = [engine.gallery.image_bytes(i)[0] for i in (1, 2)]
    assert lg.add(blobs, ["dress"]) == [n, n + 1]
    assert engine.gallery.types[n] == "dress" and engine.gallery.colours[n] == ""
    with pytest.raises(ImageError):
        lg.add([b"not an image"])
    with pytest.raises(ValueError, match="indices must be gallery indices"):
        lg.remove([n + 2])
    assert len(engine.gallery) == len(Gallery.load(folder)) == n + 2


def test_a_crash_mid_save_never_loses_the_gallery(engine, folder, monkeypatch):
    n = len(engine.gallery)
    smaller = live.remove_rows(engine.gallery, [0])
    monkeypatch.setattr(live, "_exchange", lambda a, b: False)  # the two-rename path
    real_rename = os.rename
    calls = []

    def crash_on_second(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise KeyboardInterrupt("power cut")
        return real_rename(a, b)

    monkeypatch.setattr(live.os, "rename", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_atomically(smaller, folder)
    monkeypatch.setattr(live.os, "rename", real_rename)
    assert not folder.exists()
    recover(folder)  # what LiveGallery does on start-up
    assert len(Gallery.load(folder)) == n
    assert not list(folder.parent.glob(".gallery.*"))


def test_exchange_swaps_atomically_when_available(engine, folder):
    smaller = live.remove_rows(engine.gallery, [0, 1])
    save_atomically(smaller, folder)
    assert len(Gallery.load(folder)) == len(engine.gallery) - 2
    assert not list(folder.parent.glob(".gallery.*"))
