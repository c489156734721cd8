"""transformers encoders as backbones (hf:<folder or repo>), offline: tiny random-weight models saved to folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cbir.gallery.dataset import Gallery
from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec
from cbir.embed.extractor import FeatureExtractor, WeightsUnavailableError
from cbir.embed.hf_encoders import is_hf_model, list_families, text_families
from cbir.search.engine import SearchEngine
from cbir.search.loading import extractor_for, load_engine
from cbir.gallery.synthetic import garment_image
from hf_tiny import save_tiny_clip, save_tiny_dinov2, save_tiny_siglip

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _images():
    return [garment_image("red", "dress", 64, 0), garment_image("blue", "shoes", 64, 1), garment_image("red", "dress", 64, 2)]


def test_families_registry():
    assert is_hf_model("hf:user/x") and not is_hf_model("tf_efficientnet_lite2")
    assert {"clip", "siglip", "dinov2", "vit"} <= set(list_families())
    assert text_families() == ["clip", "siglip"]


def test_clip_embeds_images_and_text_in_one_space_and_spec_round_trips(clip_extractor, clip_dir, tmp_path):
    ext = clip_extractor
    vecs = ext.embed_images(_images())
    assert vecs.shape == (3, 12) and vecs.dtype == np.float32 and np.isfinite(vecs).all()
    assert not np.allclose(vecs[0], vecs[1])
    np.testing.assert_allclose(ext.embed_image(_images()[0]), vecs[0], rtol=1e-5, atol=1e-6)  # batching is neutral
    text = ext.embed_text(["red summer dress", "blue shoes"])
    assert text.shape == (2, 12) and not np.allclose(text[0], text[1])
    spec = ext.spec
    assert (spec.model, spec.family, spec.dim, spec.weights, spec.revision) == (f"hf:{clip_dir}", "clip", 12, "pretrained", "")
    assert len(spec.weights_sha256) == 64 and spec.weights_source.startswith("folder:tiny-clip")
    assert spec.data_config["crop_size"] == {"height": 32, "width": 32} and spec.data_config["image_processor_type"]
    spec.save(tmp_path / "spec.json")
    assert EmbeddingSpec.load(tmp_path / "spec.json") == spec
    assert ext.has_text and "clip" in spec.describe()


def test_extractor_from_the_spec_embeds_identically(clip_extractor):
    again, allow = extractor_for(clip_extractor.spec, device="cpu")
    assert not allow and again.spec == clip_extractor.spec
    np.testing.assert_array_equal(again.embed_images(_images()), clip_extractor.embed_images(_images()))


def test_dinov2_is_the_cls_token_and_has_no_text_tower(tmp_path):
    ext = FeatureExtractor(f"hf:{save_tiny_dinov2(tmp_path / 'dino')}", device="cpu")
    vecs = ext.embed_images(_images())
    assert vecs.shape == (3, 16) and ext.spec.family == "dinov2" and not ext.has_text
    import torch

    with torch.inference_mode():
        batch = torch.stack([ext.transform(im) for im in _images()])
        out = ext.model.model(pixel_values=batch)
    np.testing.assert_allclose(vecs, out.pooler_output.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="text tower.*clip or siglip.*fashion-clip"):
        ext.embed_text(["red dress"])


def test_siglip_images_and_max_length_padded_text(tmp_path):
    ext = FeatureExtractor(f"hf:{save_tiny_siglip(tmp_path / 'sig')}", device="cpu")
    assert ext.embed_images(_images()).shape == (3, 16) and ext.spec.family == "siglip"
    a, b = ext.embed_text(["red dress", "red dress"]), ext.embed_text(["red dress"])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)  # padding to max length: batch-independent


def test_gallery_refuses_a_query_extractor_of_another_model(clip_gallery_dir, tmp_path):
    g = Gallery.load(clip_gallery_dir)
    other = FeatureExtractor(f"hf:{save_tiny_clip(tmp_path / 'other-clip', seed=1)}", device="cpu")
    with pytest.raises(BackboneMismatchError, match="model"):
        SearchEngine(g, other)
    # the same folder name with other weights in it: caught by the weights' sha256
    other.spec = EmbeddingSpec.from_dict({**other.spec.to_dict(), "model": g.spec.model})
    with pytest.raises(BackboneMismatchError, match="sha256"):
        SearchEngine(g, other)


def test_weights_files_and_bad_names_are_clear_errors(clip_dir, tmp_path):
    with pytest.raises(ValueError, match="applies to timm backbones"):
        FeatureExtractor(f"hf:{clip_dir}", weights=str(clip_dir / "model.safetensors"), device="cpu")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FeatureExtractor(f"hf:{tmp_path / 'missing'}", device="cpu")
    with pytest.raises(ValueError, match="--revision applies to Hub repo ids"):
        FeatureExtractor(f"hf:{clip_dir}", revision="main", device="cpu")
    with pytest.raises(ValueError, match="needs a Hub repo id"):
        FeatureExtractor("hf:", device="cpu")


def test_hub_repo_is_fetched_as_a_snapshot_and_its_commit_pinned(clip_dir, tmp_path, monkeypatch):
    """A Hub id goes through snapshot_download (replaced here by a local stand-in); the commit lands in the spec."""
    import huggingface_hub

    snap = tmp_path / "snapshots" / COMMIT
    shutil.copytree(clip_dir, snap)
    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None, **kw):
        calls.append((repo_id, revision, tuple(allow_patterns)))
        return str(snap)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    ext = FeatureExtractor("hf:user/tiny-clip", revision="v1", device="cpu")
    assert calls[0][:2] == ("user/tiny-clip", "v1") and "*.safetensors" in calls[0][2]
    assert ext.spec.revision == COMMIT and ext.spec.model == "hf:user/tiny-clip"
    assert ext.spec.weights_source == "hub:user/tiny-clip (model.safetensors)"
    assert f"hf:user/tiny-clip@{COMMIT[:10]}" in ext.spec.describe()
    again, _ = extractor_for(ext.spec, device="cpu")
    assert calls[-1][:2] == ("user/tiny-clip", COMMIT)  # the app asks for the recorded commit, not "v1"
    assert again.spec == ext.spec


def test_unreachable_hub_is_a_clear_error(monkeypatch):
    import huggingface_hub

    def offline(**kw):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(WeightsUnavailableError, match="could not download.*hf:/path/to/folder"):
        FeatureExtractor("hf:user/tiny-clip", device="cpu")


def test_random_init_is_seeded(clip_dir):
    a = FeatureExtractor(f"hf:{clip_dir}", weights="random", seed=3, device="cpu")
    b = FeatureExtractor(f"hf:{clip_dir}", weights="random", seed=3, device="cpu")
    assert a.spec.is_random and a.spec.seed == 3
    np.testing.assert_array_equal(a.embed_images(_images()), b.embed_images(_images()))


def test_text_search_and_composed_query(clip_gallery_dir):
    engine = load_engine(str(clip_gallery_dir), device="cpu")
    assert engine.supports_text
    hits = engine.search_text("red summer dress", k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    # the score is the cosine between the text embedding and each gallery vector
    t = engine.extractor.embed_text(["red summer dress"])[0]
    g = engine.gallery.embeddings
    cos = g @ t / np.linalg.norm(g, axis=1) / np.linalg.norm(t)
    assert hits[0].index == int(np.argmax(cos)) and hits[0].score == pytest.approx(float(cos.max()), rel=1e-4)
    # cached per string: whitespace variants share one embedding
    assert engine.text_vector(" red  summer dress ") is engine.text_vector("red summer dress")
    # composed query: unit(image) + TEXT_WEIGHT * unit(text), at the image vector's length
    img = engine.embed(_images()[1])
    q = engine.compose(img, "red dress")
    u = lambda v: v / np.linalg.norm(v)  # noqa: E731
    np.testing.assert_allclose(u(q), u(u(img) + u(engine.text_vector("red dress"))), rtol=1e-5, atol=1e-6)
    assert np.linalg.norm(q) == pytest.approx(np.linalg.norm(img), rel=1e-5)
    plain = engine.search(_images()[1], k=len(engine.gallery))
    nudged = engine.search(_images()[1], k=len(engine.gallery), text="red dress")
    assert [h.index for h in engine.search(_images()[1], k=5, text="  ")] == [h.index for h in plain[:5]]
    assert [h.index for h in nudged] != [h.index for h in plain]
    with pytest.raises(ValueError, match="Type a description"):
        engine.search_text("   ")
    with pytest.raises(ValueError, match="limit is"):
        engine.search_text("red " * 200)


def test_timm_gallery_refuses_words(gallery, extractor):
    engine = SearchEngine(gallery, extractor)
    assert not engine.supports_text
    with pytest.raises(ValueError, match="text tower.*clip or siglip"):
        engine.search_text("red dress")
