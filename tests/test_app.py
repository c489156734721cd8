"""The Gradio app through gradio_client: every endpoint, every method and task, bad inputs, start-up policy.

Runs the app on the conftest gallery (tiny random-init timm model), on 127.0.0.1, with no network.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.embed.spec import BackboneMismatchError  # noqa: E402
from cbir.embed.extractor import WeightsUnavailableError  # noqa: E402
from cbir.images import load_image  # noqa: E402
from cbir.similarity.registry import TASK_CHOICES, get_method  # noqa: E402

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

METHODS = ["cosine", "euclidean", "logreg", "forest"]
QUERY_INDEX = 5


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(gallery_dir, classifier_dir):
    args = app.parse_args(["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--device", "cpu"])
    return app.build_engine(args)


@pytest.fixture(scope="module")
def client(engine):
    demo = app.create_app(engine)
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True,
                max_file_size=app.MAX_FILE_SIZE)  # the limits app.main launches with
    try:
        yield Client(demo.local_url, verbose=False, download_files=True)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def files(engine, tmp_path_factory):
    """A gallery image and every awkward kind of upload, written once."""
    d = tmp_path_factory.mktemp("uploads")
    base = engine.gallery.image(QUERY_INDEX)
    out = {"query": d / "query.png"}
    base.save(out["query"])
    good = out["query"].read_bytes()

    out["corrupt"] = d / "corrupt.png"
    out["corrupt"].write_bytes(good[: len(good) // 2])
    out["not_image"] = d / "notes.txt"
    out["not_image"].write_text("this is not an image\n")
    out["tiny"] = d / "one_pixel.png"
    Image.new("RGB", (1, 1), (255, 0, 0)).save(out["tiny"])
    out["bomb"] = d / "huge.png"
    out["bomb"].write_bytes(_png_claiming_size(20000, 20000))

    out["grey"] = d / "grey.png"
    base.convert("L").save(out["grey"])
    out["rgba"] = d / "rgba.png"
    rgba = base.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(out["rgba"])
    out["cmyk"] = d / "cmyk.jpg"
    base.convert("CMYK").save(out["cmyk"], quality=95)
    out["16bit"] = d / "sixteen.png"
    Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257).save(out["16bit"])
    # EXIF orientation 6 ("rotate 90 CW to display"): stored pixels are the upright image rotated back.
    asym = Image.new("RGB", (64, 40), (200, 200, 200))
    asym.paste(base.resize((40, 40)), (0, 0))
    out["upright"] = d / "upright.png"
    asym.save(out["upright"])
    out["sideways"] = d / "sideways.png"
    asym.rotate(90, expand=True).save(out["sideways"])
    exif = Image.Exif()
    exif[0x0112] = 6
    out["exif"] = d / "exif_rotated.jpg"
    asym.rotate(90, expand=True).save(out["exif"], exif=exif, quality=100, subsampling=0)
    return out


def _png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression bomb by its header alone)."""
    buf = io.BytesIO()
    Image.new("1", (16, 16)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _search(client, path, method="cosine", task="type", k=10, exclude=-1):
    return client.predict(handle_file(str(path)), method, task, k, exclude, api_name="/search")


def _assert_ranked(result, engine, k):
    hits = result["results"]
    assert len(hits) == k
    assert [h["rank"] for h in hits] == list(range(1, k + 1))
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    labels = set(engine.gallery.labels.tolist())
    for h in hits:
        assert h["label"] in labels
        assert h["label"] == engine.gallery.labels[h["index"]]
        assert np.isfinite(h["score"])


# --- API shape -------------------------------------------------------------------------------------------


def test_view_api_lists_exactly_the_named_endpoints(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == {
        "/search", "/search_batch", "/search_text", "/random", "/compare", "/explain", "/add", "/remove"
    }
    assert not info["unnamed_endpoints"]
    params = {e: [p["parameter_name"] for p in v["parameters"]] for e, v in info["named_endpoints"].items()}
    assert params == {
        "/search": ["image", "method", "task", "k", "exclude", "types", "colours", "positives", "negatives", "box",
                    "dedup", "text", "min_score"],
        "/search_batch": ["images", "method", "task", "k", "exclude", "types", "colours", "positives", "negatives",
                          "boxes", "dedup", "text", "min_score"],
        "/search_text": ["text", "k", "types", "colours", "dedup", "min_score"],
        "/random": [],
        "/compare": ["image_a", "image_b", "method", "task"],
        "/explain": ["image", "index", "method", "task", "box"],
        "/add": ["images", "labels", "token", "metadata"],
        "/remove": ["indices", "token"],
    }
    returns = {e: [r["label"] for r in v["returns"]] for e, v in info["named_endpoints"].items()}
    assert returns == {
        "/search": ["results"], "/search_batch": ["answers"], "/search_text": ["results"], "/random": ["image", "label", "index"], "/compare": ["score"],
        "/explain": ["query_overlay", "result_overlay", "score"], "/add": ["indices"], "/remove": ["count"],
    }


# --- /search ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_search_every_method_and_task(client, engine, files, method):
    for task in TASK_CHOICES:
        result = _search(client, files["query"], method, task, k=7)
        assert result["method"] == method and result["task"] == task
        _assert_ranked(result, engine, 7)


def test_search_accepts_method_labels_and_default_arguments(client, engine, files):
    by_label = _search(client, files["query"], get_method("logreg").label, "colour", k=5)
    by_name = _search(client, files["query"], "logreg", "colour", k=5)
    assert by_label["method"] == "logreg"
    assert by_label["results"] == by_name["results"]
    default = client.predict(handle_file(str(files["query"])), api_name="/search")
    assert default["method"] == engine.default_method() and default["k"] == 10  # the method the UI preselects
    _assert_ranked(default, engine, 10)


def test_search_query_from_gallery_finds_itself_unless_excluded(client, engine, files):
    found = _search(client, files["query"], k=3)
    assert found["results"][0]["index"] == QUERY_INDEX
    assert found["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    excluded = _search(client, files["query"], k=len(engine.gallery) - 1, exclude=QUERY_INDEX)
    assert excluded["excluded_index"] == QUERY_INDEX
    assert QUERY_INDEX not in [h["index"] for h in excluded["results"]]
    _assert_ranked(excluded, engine, len(engine.gallery) - 1)


@pytest.mark.parametrize(
    "args, message",
    [
        (("no-such-method", "type", 5, -1), "Unknown or unavailable method"),
        (("cosine", "size", 5, -1), "task must be one of"),
        (("cosine", "type", 0, -1), "k must be between 1 and"),
        (("cosine", "type", 2.5, -1), "k must be a whole number"),
        (("cosine", "type", 5, 10_000), "exclude must be -1 or a gallery index"),
    ],
)
def test_search_bad_arguments_are_clear_errors(client, engine, files, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(files["query"])), *args, api_name="/search")
    _assert_ranked(_search(client, files["query"], k=3), engine, 3)


# --- /random ---------------------------------------------------------------------------------------------


def test_random_returns_a_gallery_image_label_and_index(client, engine):
    path, label, index = client.predict(api_name="/random")
    assert 0 <= index < len(engine.gallery)
    assert label == engine.gallery.labels[index]
    assert np.array_equal(np.asarray(load_image(path)), np.asarray(engine.gallery.image(index)))
    # The returned image and index are what /search needs to leave the query out of its own results.
    result = client.predict(handle_file(path), "cosine", "type", 5, index, api_name="/search")
    assert index not in [h["index"] for h in result["results"]]


# --- /compare --------------------------------------------------------------------------------------------


def test_compare_self_scores_at_least_every_other_gallery_image(client, engine, files):
    self_score = client.predict(handle_file(str(files["query"])), handle_file(str(files["query"])), "cosine",
                                api_name="/compare")
    assert self_score == pytest.approx(1.0, abs=1e-4)
    # Every gallery image, through /search (k = N); a few of them through /compare too, which must agree.
    everyone = _search(client, files["query"], k=len(engine.gallery), exclude=QUERY_INDEX)["results"]
    assert all(self_score >= h["score"] - 1e-6 for h in everyone)
    for h in everyone[:: max(1, len(everyone) // 5)]:
        other = engine.gallery.image(h["index"])
        path = files["query"].parent / f"other-{h['index']}.png"
        other.save(path)
        score = client.predict(handle_file(str(files["query"])), handle_file(str(path)), "Cosine similarity",
                               api_name="/compare")
        assert self_score >= score
        assert score == pytest.approx(h["score"], abs=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_compare_every_method(client, files, method):
    for task in TASK_CHOICES:
        score = client.predict(handle_file(str(files["query"])), handle_file(str(files["grey"])), method, task,
                               api_name="/compare")
        assert isinstance(score, float) and np.isfinite(score)


# --- bad and awkward uploads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("corrupt", "Corrupt or truncated image"),
        ("not_image", "Not an image file"),
        ("tiny", "Image is 1x1 pixels; at least 16x16 is needed"),
        ("bomb", "Image is too large (400.0 MP); the limit is 40 MP"),
    ],
)
def test_unusable_uploads_give_clear_errors_and_the_app_keeps_serving(client, engine, files, name, message):
    with pytest.raises(AppError) as err:
        _search(client, files[name])
    assert message in err.value.message
    with pytest.raises(AppError, match="Corrupt|Not an image|pixels|too large"):
        client.predict(handle_file(str(files[name])), handle_file(str(files["query"])), api_name="/compare")
    _assert_ranked(_search(client, files["query"], k=4), engine, 4)


def test_fuzzed_uploads_through_search_give_clear_errors_and_the_app_keeps_serving(client, engine, files, tmp_path):
    from fuzzing import fuzz_cases

    sample = list(fuzz_cases(per_format=200, seed=0))[::73]  # 31 cases across all eleven formats
    outcomes = []
    for i, (case, data) in enumerate(sample):
        path = tmp_path / f"case{i}.{case.split('/')[0]}"
        path.write_bytes(data)
        try:
            result = _search(client, path, k=3)
        except AppError as e:
            message = e.message or ""
            assert message and "upstream" not in message and "Traceback" not in message, (case, message)
            assert "Try another photo" in message or "upload a" in message or "resize it" in message, (case, message)
            outcomes.append("error")
        else:
            _assert_ranked(result, engine, 3)
            outcomes.append("ok")
    assert outcomes.count("error") >= 10
    _assert_ranked(_search(client, files["query"], k=3), engine, 3)  # and the next good request works


@pytest.mark.parametrize(
    "content, name, message",
    [
        (b"", "empty.jpg", "The file is empty (0 bytes"),
        (b"\n", "blank.png", "Not an image file"),
        (b"\x89PNG\r\n\x1a\n", "header_only.png", "PNG data damaged or cut short"),
        (b"\xff\xd8\xff\xe0" + bytes(range(7, 47)), "cut_in_app0.jpg", "JPEG data damaged or cut short"),
    ],
)
def test_empty_and_cut_uploads_are_clear_errors(client, engine, files, tmp_path, content, name, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AppError) as err:
        _search(client, path)
    assert message in err.value.message and "Error" not in err.value.message
    _assert_ranked(_search(client, files["query"], k=2), engine, 2)


@pytest.mark.parametrize("name", ["photo.jpg", "photo.txt", "photo"])
def test_an_image_with_a_wrong_extension_simply_works(client, engine, files, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(files["query"].read_bytes())  # PNG bytes under a misleading name
    assert _search(client, path, k=1)["results"][0]["index"] == QUERY_INDEX


def test_uploads_over_the_size_limit_are_refused_clearly(client, engine, files, tmp_path):
    import httpx

    big = tmp_path / "huge.jpg"
    big.write_bytes(files["query"].read_bytes() + bytes(26 * 1024 * 1024))  # 26 MB > MAX_FILE_SIZE (25 MB)
    with pytest.raises(ValueError, match="exceeds the maximum file size of 26214400 bytes"):
        _search(client, big)  # gradio_client checks the limit before sending
    with big.open("rb") as f:  # a client that does not check is refused by the server
        r = httpx.post(client.src.rstrip("/") + "/gradio_api/upload", files={"files": ("huge.jpg", f)}, timeout=60)
    assert r.status_code == 413 and "maximum allowed size of 26214400 bytes" in r.text
    _assert_ranked(_search(client, files["query"], k=2), engine, 2)


def test_an_unexpected_server_error_is_logged_and_the_user_told_what_to_do(client, engine, files, monkeypatch,
                                                                             caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(engine, "search_vectors", broken)
    with caplog.at_level("INFO", logger="cbir.app"):
        with pytest.raises(AppError) as err:
            _search(client, files["query"])
    assert "The server failed while searching" in err.value.message and "try again" in err.value.message
    assert "model exploded" not in err.value.message
    assert "model exploded" in caplog.text  # the detail stays in the server log
    monkeypatch.undo()
    _assert_ranked(_search(client, files["query"], k=2), engine, 2)


@pytest.mark.parametrize("name", ["grey", "rgba", "cmyk", "16bit", "exif"])
def test_awkward_but_valid_uploads_work(client, engine, files, name):
    _assert_ranked(_search(client, files[name], "euclidean", "type", k=5), engine, 5)


def test_exif_orientation_is_applied(client, files):
    def cos(a, b):
        return client.predict(handle_file(str(files[a])), handle_file(str(files[b])), "cosine", api_name="/compare")

    upright, sideways = cos("exif", "upright"), cos("exif", "sideways")
    assert upright > 0.99
    assert upright > sideways


def test_missing_image_and_non_uploaded_paths_are_refused(client, engine, files, tmp_path):
    with pytest.raises(AppError, match="No image"):
        client.predict(None, api_name="/search")
    secret = tmp_path / "server_side.png"
    shutil.copy(files["query"], secret)
    # A bare path string, or a file dict pointing outside Gradio's upload folder, must not be read.
    with pytest.raises(AppError, match="handle_file"):
        client.predict(str(secret), api_name="/search")
    with pytest.raises(AppError, match="not uploaded|cannot be accessed|not in the upload folder"):
        client.predict({"path": str(secret)}, api_name="/search")
    _assert_ranked(_search(client, files["query"], k=2), engine, 2)


# --- UI handlers (private events): the picked gallery image is left out of its own results -------------------


def test_ui_random_then_search_excludes_the_picked_image(engine, files):
    from gradio.utils import get_upload_folder

    h = app._Handlers(engine)
    path, info, state = h.ui_random()
    index = state["index"]
    assert engine.gallery.labels[index] in info
    # Gradio hands the handler the copy it keeps in its upload/cache folder.
    cached = Path(get_upload_folder()) / "test-app" / f"picked-{index}.png"
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, cached)
    n = len(engine.gallery)
    items, table, result, hist, pca = h.ui_search({"path": str(cached)}, "Cosine similarity", "type", n - 1, state)
    assert result["excluded_index"] == index and result["query"]["label"] == engine.gallery.labels[index]
    assert index not in [r["index"] for r in result["results"]]
    assert len(items) == n - 1 and all(Path(p).is_file() and " · " in caption for p, caption in items)
    assert list(table.columns) == ["rank", "label", "score", "copies", "type match", "colour match"]
    # Another image with the stale state (no reset event seen): the fingerprint no longer matches.
    other = Path(get_upload_folder()) / "test-app" / "other.png"
    Image.open(cached).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(other)
    items, table, result, hist, pca = h.ui_search({"path": str(other)}, "cosine", "type", 3, state)
    assert result["excluded_index"] == -1 and list(table.columns) == ["rank", "label", "score", "copies"]
    assert hist["count"].sum() == n and len(pca) == n + 3 + 1  # every gallery image, the 3 results, the query


# --- filters, dedup, feedback, crop box, explain ----------------------------------------------------------


def test_search_filters_by_type_and_colour(client, engine, files):
    g = engine.gallery
    res = client.predict(handle_file(str(files["query"])), "cosine", "type", 5, -1, ["shoes", "dress"], ["red"],
                         api_name="/search")
    assert res["filters"] == {"type": ["shoes", "dress"], "colour": ["red"]}
    n_match = int((np.isin(g.types, ["shoes", "dress"]) & (g.colours == "red")).sum())
    assert len(res["results"]) == min(5, n_match)
    assert all(h["type"] in ("shoes", "dress") and h["colour"] == "red" for h in res["results"])
    with pytest.raises(AppError, match="no colour 'purple' in this gallery; it has: black, blue"):
        client.predict(handle_file(str(files["query"])), colours=["purple"], api_name="/search")


def test_search_feedback_moves_the_query(client, engine, files):
    plain = _search(client, files["query"], k=10)
    hits = plain["results"]
    pos = [h["index"] for h in hits if h["type"] == hits[0]["type"]][:3]
    neg = [h["index"] for h in hits if h["type"] != hits[0]["type"]]
    res = client.predict(handle_file(str(files["query"])), "cosine", positives=pos, negatives=neg, k=10,
                         api_name="/search")
    assert res["positives"] == pos and res["negatives"] == neg
    assert [h["score"] for h in res["results"]] != [h["score"] for h in hits]
    _assert_ranked(res, engine, 10)
    with pytest.raises(AppError, match="negatives must be gallery indices"):
        client.predict(handle_file(str(files["query"])), negatives=[10_000], api_name="/search")


def test_search_box_crops_the_query(client, engine, files):
    w, h = load_image(files["query"]).size
    whole = _search(client, files["query"], k=5)
    same = client.predict(handle_file(str(files["query"])), "cosine", k=5, box=[0, 0, w, h], api_name="/search")
    assert same["box"] == [0, 0, w, h] and same["results"] == whole["results"]
    half = client.predict(handle_file(str(files["query"])), "cosine", k=5, box=[0, 0, w // 2, h // 2],
                          api_name="/search")
    assert half["results"][0]["score"] < whole["results"][0]["score"]
    with pytest.raises(AppError, match="box must be four numbers"):
        client.predict(handle_file(str(files["query"])), box=[1, 2, 3], api_name="/search")
    with pytest.raises(AppError, match="at least 16x16"):
        client.predict(handle_file(str(files["query"])), box=[0, 0, 5, 5], api_name="/search")


def test_explain_returns_two_overlays_and_the_search_score(client, engine, files):
    hit = _search(client, files["query"], "euclidean", k=3)["results"][2]
    qa, qb, score = client.predict(handle_file(str(files["query"])), hit["index"], "euclidean", api_name="/explain")
    assert score == pytest.approx(hit["score"], rel=1e-4)
    a, b = load_image(qa), load_image(qb)
    assert a.size == b.size and a.size[0] >= 16
    with pytest.raises(AppError, match="index must be a gallery index"):
        client.predict(handle_file(str(files["query"])), 10_000, api_name="/explain")


def test_add_and_remove_refuse_without_the_admin_token(client, files):
    with pytest.raises(AppError, match="CBIR_ADMIN_TOKEN"):
        client.predict([handle_file(str(files["query"]))], None, "guess", api_name="/add")
    with pytest.raises(AppError, match="CBIR_ADMIN_TOKEN"):
        client.predict([0], "guess", api_name="/remove")


# --- the live gallery (its own copy of the gallery folder, with an admin token) --------------------------------

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def live_folder(gallery_dir, tmp_path_factory):
    return shutil.copytree(gallery_dir, tmp_path_factory.mktemp("live") / "gallery")


@pytest.fixture(scope="module")
def live_client(live_folder):
    engine = app.build_engine(app.parse_args(["--gallery", str(live_folder), "--classifiers", "none",
                                              "--device", "cpu"]))
    demo = app.create_app(engine, gallery_dir=live_folder, admin_token=TOKEN)
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False, download_files=True), engine
    finally:
        demo.close()


def test_live_gallery_remove_then_readd_gives_the_same_results(live_client, live_folder, files, tmp_path):
    client, engine = live_client
    with pytest.raises(AppError, match="Wrong or missing admin token.*CBIR_ADMIN_TOKEN"):
        client.predict([0], "wrong", api_name="/remove")

    def ranked():
        res = _search(client, files["query"], k=8)["results"]
        return [(engine.gallery.hashes[h["index"]], h["label"], round(h["score"], 5)) for h in res]

    before = ranked()
    n = len(engine.gallery)
    target = _search(client, files["query"], k=2)["results"][1]
    data, suffix = engine.gallery.image_bytes(target["index"])
    path = tmp_path / f"again{suffix}"
    path.write_bytes(data)
    assert client.predict([target["index"]], TOKEN, api_name="/remove") == 1
    assert len(Gallery.load(live_folder)) == n - 1  # persisted before it answered
    assert before[1][0] not in set(engine.gallery.hashes)  # the removed image is gone from the served gallery
    assert client.predict([handle_file(str(path))], [target["label"]], TOKEN, api_name="/add") == [n - 1]
    assert ranked() == before
    assert len(Gallery.load(live_folder)) == n


def test_live_gallery_copies_are_collapsed_by_dedup(live_client, files):
    client, engine = live_client
    n = len(engine.gallery)
    added = client.predict([handle_file(str(files["query"]))] * 2, ["black_dress"], TOKEN, api_name="/add")
    assert added == [n, n + 1]
    try:
        collapsed = _search(client, files["query"], k=5)["results"]
        assert collapsed[0]["copies"] == 3 and collapsed[0]["score"] == pytest.approx(1.0, abs=1e-4)
        assert len(collapsed) == 5 and all(h["copies"] == 1 for h in collapsed[1:])
        plain = client.predict(handle_file(str(files["query"])), "cosine", k=5, dedup=False,
                               api_name="/search")["results"]
        assert sorted(h["index"] for h in plain[:3]) == sorted([QUERY_INDEX, n, n + 1])
    finally:
        assert client.predict(added, TOKEN, api_name="/remove") == 2
    with pytest.raises(AppError, match="Not an image file"):
        client.predict([handle_file(str(files["not_image"]))], None, TOKEN, api_name="/add")
    assert len(engine.gallery) == n


# --- start-up policy -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pretrained_gallery_dir(gallery_dir, tmp_path_factory):
    """The fixture gallery, re-saved with a spec claiming ImageNet-pretrained weights."""
    g = Gallery.load(gallery_dir)
    spec = dataclasses.replace(g.spec, weights="pretrained", seed=None, weights_source=f"hub:{g.spec.model}")
    return Gallery(g.dataset, spec).save(tmp_path_factory.mktemp("pretrained") / "gallery")


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """Offline with an empty cache: pretrained weights cannot be had, whatever this machine has cached."""
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_pretrained_gallery_without_weights_is_refused(pretrained_gallery_dir, empty_hub_cache, capsys):
    argv = ["--gallery", str(pretrained_gallery_dir), "--classifiers", "none", "--device", "cpu"]
    with pytest.raises(WeightsUnavailableError, match="--random-weights"):
        app.build_engine(app.parse_args(argv))
    assert app.main(argv) == 1  # what `python app.py ...` exits with: a message, no server
    err = capsys.readouterr().err
    assert "cannot start" in err and "--random-weights" in err
    with pytest.raises(WeightsUnavailableError, match="weights file not found"):
        app.build_engine(app.parse_args(argv + ["--weights", str(pretrained_gallery_dir / "missing.pth")]))


def test_pretrained_gallery_with_random_weights_is_a_flagged_smoke_run(pretrained_gallery_dir, empty_hub_cache, files):
    argv = ["--gallery", str(pretrained_gallery_dir), "--classifiers", "none", "--device", "cpu", "--random-weights"]
    engine = app.build_engine(app.parse_args(argv))
    assert engine.extractor.spec.is_random and not engine.gallery.spec.is_random
    assert engine.available_methods() == ["cosine", "euclidean"]  # no classifiers: learned methods hidden
    banner = app.weights_banner(engine)
    assert banner.startswith("SMOKE RUN: random query features, scores are meaningless")
    demo = app.create_app(engine)
    assert "SMOKE RUN: random query features, scores are meaningless" in str(demo.config)
    assert len(engine.search(files["query"], k=3)) == 3


def test_random_init_gallery_gets_a_banner_and_refuses_a_weights_file(engine, gallery_dir, files):
    banner = app.weights_banner(engine)
    assert banner and "randomly initialised" in banner.lower() and "not meaningful" in banner
    assert "not meaningful" in str(app.create_app(engine).config)
    with pytest.raises(BackboneMismatchError, match="random-init"):
        app.build_engine(app.parse_args(["--gallery", str(gallery_dir), "--weights", str(files["query"])]))


def test_arguments_and_environment(monkeypatch):
    monkeypatch.setenv("CBIR_GALLERY", "user/gallery")
    monkeypatch.setenv("CBIR_CLASSIFIERS", "user/classifiers")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    a = app.parse_args([])
    expected = ("user/gallery", "user/classifiers", "0.0.0.0", 7999, False)
    assert (a.gallery, a.classifiers, a.host, a.port, a.share) == expected
    b = app.parse_args(["--gallery", "x", "--port", "8000", "--host", "127.0.0.1"])
    assert (b.gallery, b.port, b.host) == ("x", 8000, "127.0.0.1")
    for var in ("CBIR_GALLERY", "CBIR_CLASSIFIERS", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(var)
    c = app.parse_args([])
    assert (c.gallery, c.classifiers, c.host, c.port, c.random_weights) == (None, None, "127.0.0.1", 7860, False)
    assert (c.concurrency, c.threads) == (app.DEFAULT_CONCURRENCY, None)
    monkeypatch.setenv("CBIR_CONCURRENCY", "4")
    monkeypatch.setenv("CBIR_THREADS", "1")
    d = app.parse_args([])
    assert (d.concurrency, d.threads) == (4, 1)
    assert app.parse_args(["--concurrency", "3", "--threads", "2"]).concurrency == 3
    assert (d.gallery_revision, d.classifiers_revision) == (None, None)
    monkeypatch.setenv("CBIR_GALLERY_REVISION", "v1.0")
    monkeypatch.setenv("CBIR_CLASSIFIERS_REVISION", "3f2a1c0")
    e = app.parse_args([])
    assert (e.gallery_revision, e.classifiers_revision) == ("v1.0", "3f2a1c0")
    assert app.parse_args(["--gallery-revision", "main"]).gallery_revision == "main"


def test_revisions_reach_the_loaders(monkeypatch):
    seen = {}

    def fake_load_engine(gallery, classifiers, weights, random_weights, device, **options):
        seen.update(gallery=gallery, classifiers=classifiers, **{k: v for k, v in options.items() if "revision" in k})
        raise ValueError("stop here")

    monkeypatch.setattr(app, "load_engine", fake_load_engine)
    argv = ["--gallery", "me/g", "--gallery-revision", "v2", "--classifiers", "me/c", "--classifiers-revision", "abc"]
    with pytest.raises(ValueError, match="stop here"):
        app.build_engine(app.parse_args(argv))
    assert seen == {"gallery": "me/g", "classifiers": "me/c", "gallery_revision": "v2", "classifiers_revision": "abc"}
    with pytest.raises(SystemExit):
        app.parse_args(["--weights", "w.pth", "--random-weights"])


def test_help_runs(capsys):
    with pytest.raises(SystemExit) as e:  # in process: app.py's imports are already paid for
        app.parse_args(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage:")
    for flag in ("--gallery", "--classifiers", "--weights", "--random-weights", "--device", "--host", "--port"):
        assert flag in out
    assert "--share" in out


# --- words without a text encoder: the attribute models' vocabulary (the CLIP gallery is in test_app_text.py) ------


def test_search_text_without_a_text_encoder_ranks_by_the_named_type_and_colour(client, engine, files):
    res = client.predict("Red dresses", 6, dedup=False, api_name="/search_text")
    like = _search(client, files["query"], k=6)
    assert set(like) <= set(res) and set(res["results"][0]) == set(like["results"][0])
    assert res["words"] == {"type": "dress", "colour": "red"} and res["method"] == "attribute"
    assert res["text"] == "Red dresses" and res["query"] == {}
    clf = {t: engine.classifiers.get("attribute", t) for t in ("type", "colour")}
    g = engine.gallery
    p = np.ones(len(g))
    for task, value in res["words"].items():
        p = p * clf[task].probabilities(g.embeddings, g.descriptors)[:, list(clf[task].classes).index(value)]
    assert [r["index"] for r in res["results"]] == list(np.argsort(-p, kind="stable")[:6])
    assert [r["score"] for r in res["results"]] == pytest.approx(np.sort(p)[::-1][:6], abs=1e-5)
    jeans = client.predict("jeans", 3, types=["pants"], api_name="/search_text")  # filters apply as in /search
    assert jeans["words"] == {"type": "pants"} and all(r["type"] == "pants" for r in jeans["results"])


def test_unknown_words_and_image_plus_words_on_a_timm_gallery_are_clear(client, engine, files):
    with pytest.raises(AppError, match="does not know 'tuxedo'.*Types: .*dress.*Colours: .*red"):
        client.predict("black tuxedo", 5, api_name="/search_text")
    with pytest.raises(AppError, match="Give one colour, not blue and red"):
        client.predict("red and blue shoes", 5, api_name="/search_text")
    with pytest.raises(AppError, match="text tower"):  # nudging a photo with words needs a text encoder
        client.predict(handle_file(str(files["query"])), "cosine", "type", 3, -1, text="in red", api_name="/search")
    _assert_ranked(_search(client, files["query"], k=3), engine, 3)  # and it keeps serving


def test_a_gallery_without_colours_offers_no_colour_filter(engine, files):
    from cbir.search.engine import SearchEngine

    g = engine.gallery
    plain = Gallery(g.dataset.map(lambda row: {"colour": ""}), g.spec)
    typed = SearchEngine(plain, engine.extractor)
    demo = app.create_app(typed)
    boxes = {c["props"].get("elem_id"): c["props"] for c in demo.config["components"]}
    assert boxes["filter-colours"]["visible"] is False and boxes["filter-colours"]["choices"] == []
    assert boxes["filter-types"]["visible"] is True
    assert boxes["query-text"]["visible"] is False  # no text encoder and no attribute models: no words
    assert boxes["task"]["visible"] is False  # no learned methods
    assert [c[0] for c in boxes["filter-types"]["choices"]] == sorted(set(g.types))
    h = app._Handlers(typed)
    with pytest.raises(Exception, match="this gallery has no colour labels"):
        h.search(load_image(files["query"]), h.options("cosine", "type", 3, colours=["red"]))
    hits, result, _ = h.search(load_image(files["query"]), h.options("cosine", "type", 3, types=["shoes"]))
    assert [r["type"] for r in result["results"]] == ["shoes"] * 3


def test_the_guess_line_names_the_type_the_colour_and_the_runner_ups():
    from cbir.ui.handlers import guess

    probs = {"skirt": 0.6, "dress": 0.3, "longsleeve": 0.07, "hat": 0.02, "pants": 0.01}  # below 5 %: not offered
    text, alts = guess({"type": {"value": "skirt", "probability": 0.62, "probabilities": probs},
                        "colour": {"value": "blue", "probability": 0.8, "probabilities": {}}})
    assert text == "Looks like **a skirt** (62%), **blue** (80%). Not a skirt?" and alts == ["dress", "longsleeve"]
    sure, none = guess({"type": {"value": "shoes", "probability": 1.0, "probabilities": {"shoes": 1.0}}})
    assert sure == "Looks like **shoes** (100%)." and none == []
    assert guess({}) == ("", [])  # no attribute models: no guess line
