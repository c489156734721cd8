"""Hub paths without the network: the download functions are replaced by local stand-ins, and an
"unreachable Hub" is an endpoint on 127.0.0.1 where nothing listens."""

import socket
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import cbir.hub as hub
from cbir.similarity.classifiers import CLASSIFIER_KINDS, ClassifierSet
from cbir.gallery.dataset import Gallery, push_gallery


def test_is_local_and_path_like_errors(tmp_path):
    assert hub.is_local(tmp_path)
    assert not hub.is_local("user/apparel-gallery")
    for bad in (str(tmp_path / "missing"), "./missing", "a/b/c"):
        with pytest.raises(FileNotFoundError):
            hub.is_local(bad)


def test_classifiers_load_from_a_hub_repo_id(monkeypatch, classifier_dir, gallery):
    calls = []

    def fake_download(repo_id, filename, repo_type, revision=None):
        calls.append((repo_id, filename, repo_type, revision))
        return str(classifier_dir / filename)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    cs = ClassifierSet.load("someone/apparel-classifiers")
    assert {(k, t) for k, t in cs.classifiers} == {(k, t) for k in CLASSIFIER_KINDS for t in ("type", "colour")}
    assert calls[0] == ("someone/apparel-classifiers", "classifiers.json", "model", None)
    assert all(c[0] == "someone/apparel-classifiers" for c in calls)
    calls.clear()
    ClassifierSet.load("someone/apparel-classifiers", revision="v1.0")
    assert calls and all(c[3] == "v1.0" for c in calls)  # every file from the pinned revision
    q = gallery.embeddings[:3]
    local = ClassifierSet.load(classifier_dir)
    np.testing.assert_array_equal(
        cs.score_pairs("logreg", "type", q, q[::-1]), local.score_pairs("logreg", "type", q, q[::-1])
    )


def test_gallery_loads_from_a_hub_dataset_id(monkeypatch, gallery_dir, gallery):
    import datasets

    revisions = []

    def fake_load_dataset(repo_id, split, revision=None):
        assert (repo_id, split) == ("someone/apparel-gallery", "train")
        revisions.append(("dataset", revision))
        return datasets.load_from_disk(str(gallery_dir))

    def fake_download(repo_id, filename, repo_type, revision=None):
        revisions.append((filename, revision))
        return str(gallery_dir / filename) if repo_type == "dataset" else None

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    g = Gallery.load("someone/apparel-gallery")
    assert g.spec == gallery.spec
    np.testing.assert_array_equal(g.embeddings, gallery.embeddings)
    Gallery.load("someone/apparel-gallery", revision="3f2a1c0")
    assert revisions[-3:] == [("dataset", "3f2a1c0"), ("embedding_spec.json", "3f2a1c0"), ("colour_spec.json", "3f2a1c0")]


def test_a_revision_with_a_local_folder_is_a_clear_error(gallery_dir, classifier_dir):
    with pytest.raises(ValueError, match="pins a Hub repo id.*drop the revision"):
        Gallery.load(gallery_dir, revision="v1")
    with pytest.raises(ValueError, match="pins a Hub repo id"):
        ClassifierSet.load(classifier_dir, revision="v1")


# --- failing fast without network ------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    """No offline variables, an empty cache, and a Hub endpoint that refuses connections."""
    import datasets.config
    import huggingface_hub.constants as hfc

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setattr(hfc, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(hub, "_probe_cache", {})
    monkeypatch.setattr(hub, "PROBE_TIMEOUT", 2.0)


def _timed(fn):
    t0 = time.perf_counter()
    with pytest.raises(Exception) as err:
        fn()
    return err.value, time.perf_counter() - t0


def test_unreachable_hub_answers_fast_and_says_so(unreachable_hub):
    for load in (lambda: Gallery.load("user/repo"), lambda: ClassifierSet.load("user/repo")):
        err, seconds = _timed(load)
        assert isinstance(err, hub.HubUnavailableError), repr(err)
        assert "cannot be reached" in str(err) and "user/repo" in str(err) and "local folder" in str(err)
        assert seconds < 5, f"took {seconds:.1f} s"  # the behaviour under test is "no retry loop", not speed


def test_app_with_a_hub_gallery_and_no_network_exits_fast_with_a_message(unreachable_hub, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import app

    t0 = time.perf_counter()
    assert app.main(["--gallery", "user/repo", "--device", "cpu"]) == 1
    assert time.perf_counter() - t0 < 5
    err = capsys.readouterr().err
    assert "cannot start" in err and "cannot be reached" in err and "user/repo" in err


def test_pretrained_hub_weights_without_network_fail_fast(unreachable_hub):
    from cbir.embed.extractor import WeightsUnavailableError, create_backbone

    err, seconds = _timed(lambda: create_backbone("test_resnet.r160_in1k", weights="pretrained"))
    assert isinstance(err, WeightsUnavailableError) and "unreachable" in str(err) and "--weights" in str(err)
    assert seconds < 5, f"took {seconds:.1f} s"


def test_offline_variables_are_honoured_without_probing(unreachable_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probed the network"))
    assert hub.hub_status() == "offline"
    err, _ = _timed(lambda: Gallery.load("user/repo"))
    assert isinstance(err, hub.HubUnavailableError) and "offline mode is on" in str(err)


def test_offline_loads_are_answered_from_the_cache(unreachable_hub, monkeypatch, classifier_dir):
    """Unreachable Hub, files cached: the download runs in offline mode (no retries) and succeeds."""
    import huggingface_hub.constants as hfc

    seen = []

    def cached_download(repo_id, filename, repo_type, revision=None):
        seen.append(hfc.HF_HUB_OFFLINE)
        return str(classifier_dir / filename)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", cached_download)
    assert ClassifierSet.load("user/repo").classifiers
    assert seen and all(seen)  # every lookup ran with offline mode forced on
    assert hfc.HF_HUB_OFFLINE is False  # and it is restored afterwards


def test_the_probe_is_short_and_its_answer_cached(monkeypatch):
    calls = []

    def refuse(address, timeout):
        calls.append(timeout)
        raise OSError("network unreachable")

    monkeypatch.setattr(hub, "_probe_cache", {})
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert hub.hub_reachable() is False and hub.hub_reachable() is False
    assert calls == [hub.PROBE_TIMEOUT] and hub.PROBE_TIMEOUT <= 3


def _http_error(cls, status):
    url = "https://huggingface.co/api/datasets/user/nope"
    return cls("not found", response=httpx.Response(status, request=httpx.Request("GET", url)))


@pytest.mark.parametrize("revision", [None, "v9"])
def test_a_repo_that_does_not_exist_is_told_apart_from_an_unreachable_hub(monkeypatch, revision):
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    monkeypatch.setattr(hub, "hub_status", lambda: "online")
    hub.check_repo.cache_clear()
    error = RevisionNotFoundError if revision else RepositoryNotFoundError

    def repo_info(self, repo_id, repo_type=None, revision=None, timeout=None):
        assert timeout and timeout <= 5
        raise _http_error(error, 404)

    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda **kw: pytest.fail("downloaded anyway"))
    with pytest.raises(hub.HubNotFoundError) as err:
        Gallery.load("user/nope", revision=revision)
    if revision:
        assert "has no revision 'v9'" in str(err.value)
    else:
        assert "no Hub dataset repo user/nope" in str(err.value) and "private" in str(err.value)


def test_push_uploads_dataset_spec_and_classifier_folder(monkeypatch, gallery_dir, classifier_dir):
    import datasets
    import huggingface_hub

    pushed, uploaded = [], []
    monkeypatch.setattr(datasets.Dataset, "push_to_hub", lambda self, repo_id, **kw: pushed.append((repo_id, len(self))))

    class FakeApi:
        def __init__(self, token=None):
            pass

        def upload_file(self, **kw):
            uploaded.append(("file", kw["path_in_repo"], kw["repo_type"]))

        def create_repo(self, repo_id, **kw):
            uploaded.append(("repo", repo_id, kw["repo_type"]))

        def upload_folder(self, **kw):
            uploaded.append(("folder", kw["folder_path"], kw["repo_type"]))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert push_gallery(gallery_dir, "me/gallery").endswith("datasets/me/gallery")
    assert hub.push_folder(classifier_dir, "me/classifiers").endswith("/me/classifiers")
    assert pushed == [("me/gallery", 96)]
    assert ("file", "embedding_spec.json", "dataset") in uploaded
    assert ("folder", str(classifier_dir), "model") in uploaded
