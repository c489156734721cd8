"""Live add and remove on every store (numpy, FAISS, milvus-lite, a real Milvus server): an added image is
found at once, a removed one never comes back, ids stay stable, the ranking equals the in-process one, and
a restart keeps the change, also when the process is killed (SIGKILL) between writing the gallery and the store."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageOps

from cbir.gallery.dataset import Gallery
from cbir.gallery.live import LiveGallery
from cbir.search.engine import SearchEngine
from cbir.stores import GalleryStore, open_gallery_store
from cbir.stores.methods import RAW_SPACE
from cbir.stores.sync import matching_prefix
from .test_contract import uri_for

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["numpy", "faiss:flat", "milvus", "milvus-server"]
METHODS = ["cosine", "euclidean", "logreg", "attribute"]


def _copy(gallery_dir: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(gallery_dir, tmp_path / name))


def _ranking(engine: SearchEngine, image, method: str, k: int = 8) -> list[tuple[int, str]]:
    return [(h.index, h.id) for h in engine.search(image, method, "type", k=k)]


def _same_as_in_process(on_store: SearchEngine, plain: SearchEngine, image) -> None:
    for method in METHODS:
        assert _ranking(on_store, image, method) == _ranking(plain, image, method), method


@pytest.mark.parametrize("backend", BACKENDS)
def test_add_and_remove_on_a_store_match_the_in_process_gallery_and_survive_a_restart(
    backend, gallery_dir, extractor, training_run, tmp_path, tmp_path_factory, request
):
    uri = uri_for(backend, tmp_path_factory, request)
    clf = training_run.classifiers
    a, b = _copy(gallery_dir, tmp_path, "on-store"), _copy(gallery_dir, tmp_path, "plain")
    on_store = SearchEngine(Gallery.load(a), extractor, clf)
    on_store.store = open_gallery_store(uri, on_store.gallery, clf, METHODS, progress=False)
    plain = SearchEngine(Gallery.load(b), extractor, clf)
    live_s, live_p = LiveGallery(on_store, a), LiveGallery(plain, b)
    n, ids = len(plain.gallery), list(plain.gallery.ids)
    removed = [3, 10]
    gone = [on_store.gallery.image(i) for i in removed]
    blobs = [on_store.gallery.image_bytes(i)[0] for i in removed]
    gone_ids = {ids[i] for i in removed}

    assert live_s.remove(removed) == live_p.remove(removed) == 2
    assert on_store.store.count() == n - 2
    assert list(on_store.gallery.ids) == [x for i, x in enumerate(ids) if i not in removed]  # ids kept, rows moved up
    for img in gone:  # a removed image never comes back, whichever method
        for method in METHODS:
            assert not gone_ids & {h.id for h in on_store.search(img, method, "type", k=n)}
    _same_as_in_process(on_store, plain, plain.gallery.image(5))

    new = live_s.add(blobs, ["red_dress", "shoes"])  # the removed photos, back as new items
    assert new == live_p.add(blobs, ["red_dress", "shoes"]) == [n - 2, n - 1]
    hit = on_store.search(gone[1], "cosine", k=1)[0]  # searchable at once, with its id
    assert (hit.index, hit.id) == (n - 1, plain.gallery.ids[n - 1]) and hit.id.startswith("added-")
    _same_as_in_process(on_store, plain, plain.gallery.image(5))

    on_store.store.close()  # a restart: the folder and the store as left on disk (or server)
    again = SearchEngine(Gallery.load(a), extractor, clf)
    again.store = open_gallery_store(uri, again.gallery, clf, METHODS, progress=False)
    assert again.store.count() == n
    _same_as_in_process(again, plain, plain.gallery.image(5))
    again.store.close()


KILLED_EDIT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from cbir.embed.extractor import FeatureExtractor
    from cbir.gallery.dataset import Gallery
    from cbir.gallery.live import LiveGallery
    from cbir.search.engine import SearchEngine
    from cbir.stores import gallery_columns, open_gallery_store, sync

    extractor = FeatureExtractor({model!r}, weights="random", device="cpu", seed=0)
    engine = SearchEngine(Gallery.load({folder!r}), extractor)
    engine.store = open_gallery_store({uri!r}, engine.gallery, None, ["cosine", "euclidean"], progress=False)
    real = getattr(sync, {point!r})

    def killed(*args, **kwargs):
        if {point!r} == "fill":  # half the rows written, then the power goes
            store, gallery = args[0], args[1]
            n = len(gallery)
            first = min(len(s.ids()) for s in store.spaces.values())
            rows = np.arange(first, first + (n - first) // 2)
            if len(rows):
                store.add(rows, gallery.embeddings[rows], {{c: v[rows] for c, v in gallery_columns(gallery).items()}})
                store.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(sync, {point!r}, killed)
    LiveGallery(engine, {folder!r}).{edit}
    """
)


# each crash point and each edit once: the four crossings cost about a minute each on 2 cores
@pytest.mark.parametrize(("point", "edit"), [("drop_from", "remove([2, 9])"), ("fill", "add([{blob!r}], ['blue_shoes'])")])
def test_a_process_killed_between_the_gallery_and_the_store_loses_nothing(
    point, edit, gallery_dir, extractor, tmp_path
):
    pytest.importorskip("milvus_lite")
    folder = _copy(gallery_dir, tmp_path, "gallery")
    uri = f"milvus:{tmp_path / 'store.db'}"
    before = Gallery.load(folder)
    photo = io.BytesIO()
    ImageOps.mirror(before.image(4)).rotate(90).save(photo, "PNG")  # a new photo: no tie with a gallery copy
    edit = edit.format(blob=photo.getvalue())
    script = KILLED_EDIT.format(root=str(ROOT), model=extractor.spec.model, folder=str(folder), uri=uri,
                                point=point, edit=edit)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9, proc.stderr[-2000:]  # killed, as planned, after the gallery was written
    after = Gallery.load(folder)
    assert len(after) != len(before)  # the gallery folder holds the edit
    probe = GalleryStore(uri, after.spec.dim, ["cosine", "euclidean"])
    assert matching_prefix(probe, RAW_SPACE, after) < len(after)  # and the store does not (yet)
    probe.close()
    plain = SearchEngine(after, extractor)
    restarted = SearchEngine(Gallery.load(folder), extractor)
    restarted.store = open_gallery_store(uri, restarted.gallery, None, ["cosine", "euclidean"], progress=False)
    assert restarted.store.count() == len(after)
    for i in (0, len(after) - 1):
        for method in ("cosine", "euclidean"):
            got = [(h.index, h.id) for h in restarted.search(after.image(i), method, k=len(after))]
            assert got == [(h.index, h.id) for h in plain.search(after.image(i), method, k=len(after))]
    restarted.store.close()


def test_a_store_of_another_gallery_is_still_refused(gallery, tmp_path):
    pytest.importorskip("milvus_lite")
    uri = f"milvus:{tmp_path / 'other.db'}"
    s = open_gallery_store(uri, gallery, None, ["cosine"], progress=False)
    s.add(np.array([0]), gallery.embeddings[[5]], {"label": ["x"], "colour": ["x"], "type": ["x"]})  # wrong first row
    s.flush()
    s.close()
    with pytest.raises(ValueError, match="another gallery"):
        open_gallery_store(uri, gallery, None, ["cosine"], progress=False)


def test_the_served_app_adds_and_removes_on_a_store_behind_the_token(gallery_dir, gallery, tmp_path):
    """/add and /remove through gradio_client on an app started with --store milvus:PATH (the admin token on)."""
    pytest.importorskip("milvus_lite")
    import app
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    folder, db = _copy(gallery_dir, tmp_path, "gallery"), tmp_path / "store.db"
    args = ["--gallery", str(folder), "--classifiers", "none", "--device", "cpu", "--store", f"milvus:{db}"]
    engine = app.build_engine(app.parse_args(args))
    demo = app.create_app(engine, gallery_dir=folder, admin_token="tok")
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    photo = tmp_path / "new.png"
    ImageOps.mirror(gallery.image(6)).rotate(90).save(photo)  # a photo the gallery does not hold
    n = len(gallery)
    try:
        client = Client(demo.local_url, verbose=False, download_files=True)

        def top() -> dict:
            return client.predict(handle_file(str(photo)), "cosine", "type", 1, -1, api_name="/search")["results"][0]

        with pytest.raises(AppError, match="admin token"):
            client.predict([handle_file(str(photo))], ["blue_shoes"], "wrong", api_name="/add")
        assert client.predict([handle_file(str(photo))], ["blue_shoes"], "tok", api_name="/add") == [n]
        hit = top()
        assert (hit["index"], hit["id"], hit["label"]) == (n, "new", "blue_shoes") and engine.store.count() == n + 1
        assert client.predict([0], "tok", api_name="/remove") == 1
        assert top()["id"] == "new" and top()["index"] == n - 1  # later rows moved up, the id stayed
        assert engine.store.count() == n
    finally:
        demo.close()
        engine.store.close()
