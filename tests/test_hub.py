"""Hub paths without the network: the download functions are replaced by local stand-ins."""

import numpy as np
import pytest

import cbir.hub as hub
from cbir.classifiers import CLASSIFIER_KINDS, ClassifierSet
from cbir.data import Gallery


def test_is_local_and_path_like_errors(tmp_path):
    assert hub.is_local(tmp_path)
    assert not hub.is_local("user/apparel-gallery")
    for bad in (str(tmp_path / "missing"), "./missing", "a/b/c"):
        with pytest.raises(FileNotFoundError):
            hub.is_local(bad)


def test_classifiers_load_from_a_hub_repo_id(monkeypatch, classifier_dir, gallery):
    calls = []

    def fake_download(repo_id, filename, repo_type):
        calls.append((repo_id, filename, repo_type))
        return str(classifier_dir / filename)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    cs = ClassifierSet.load("someone/apparel-classifiers")
    assert {(k, t) for k, t in cs.classifiers} == {(k, t) for k in CLASSIFIER_KINDS for t in ("type", "colour")}
    assert calls[0] == ("someone/apparel-classifiers", "classifiers.json", "model")
    assert all(c[0] == "someone/apparel-classifiers" for c in calls)
    q = gallery.embeddings[:3]
    local = ClassifierSet.load(classifier_dir)
    np.testing.assert_array_equal(
        cs.score_pairs("logreg", "type", q, q[::-1]), local.score_pairs("logreg", "type", q, q[::-1])
    )


def test_gallery_loads_from_a_hub_dataset_id(monkeypatch, gallery_dir, gallery):
    import datasets

    def fake_load_dataset(repo_id, split):
        assert (repo_id, split) == ("someone/apparel-gallery", "train")
        return datasets.load_from_disk(str(gallery_dir))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(
        "huggingface_hub.hf_hub_download",
        lambda repo_id, filename, repo_type: str(gallery_dir / filename) if repo_type == "dataset" else None,
    )
    g = Gallery.load("someone/apparel-gallery")
    assert g.spec == gallery.spec
    np.testing.assert_array_equal(g.embeddings, gallery.embeddings)


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
    assert hub.push_gallery(gallery_dir, "me/gallery").endswith("datasets/me/gallery")
    assert hub.push_folder(classifier_dir, "me/classifiers").endswith("/me/classifiers")
    assert pushed == [("me/gallery", 96)]
    assert ("file", "embedding_spec.json", "dataset") in uploaded
    assert ("folder", str(classifier_dir), "model") in uploaded
