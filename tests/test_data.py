import numpy as np
import pytest

from cbir.gallery.dataset import SPEC_FILE, Gallery, build_gallery, scan_image_folder
from cbir.gallery.labels import LabelError
from cbir.gallery.synthetic import garment_image, write_image_folder
from tests.conftest import PER_CLASS


def test_scan_labels_every_image(image_folder):
    records = scan_image_folder(image_folder)
    assert len(records) == 24 * PER_CLASS
    for r in records:
        assert r.relpath.split("/")[0] == r.label.name == r.path.parent.name
        assert len(r.sha1) == 40


def test_type_only_folders_give_a_gallery_without_colour(tmp_path, extractor):
    for name in ("shoes", "hat"):  # the CC0 layout: folders named by type only
        (tmp_path / name).mkdir()
        for i in range(2):
            garment_image("blue", "shoes", size=64, seed=i + 2 * len(name)).save(tmp_path / name / f"{i}.png")
    records = scan_image_folder(tmp_path)
    assert [(r.label.name, r.label.colour, r.label.type) for r in records[::2]] == [("hat", None, "hat"), ("shoes", None, "shoes")]
    g, errors = build_gallery(records, extractor, progress=False)
    assert not errors and "colour" not in g.dataset.column_names and g.tasks == ("type",)
    assert list(g.colours) == [None] * 4 and list(g.types) == ["hat", "hat", "shoes", "shoes"]
    with pytest.raises(ValueError, match="no colour label"):
        g.require_tasks(["colour"])


def test_scan_ignores_non_image_files_and_refuses_empty(tmp_path):
    write_image_folder(tmp_path, classes=["red_dress"], per_class=2)
    (tmp_path / "red_dress" / "notes.txt").write_text("hello")
    (tmp_path / "red_dress" / ".DS_Store").write_bytes(b"\0")
    assert len(scan_image_folder(tmp_path)) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelError, match="no images"):
        scan_image_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        scan_image_folder(tmp_path / "missing")


def test_gallery_columns_and_labels(gallery):
    ds = gallery.dataset
    assert {"image", "label", "colour", "type", "embedding", "sha1", "path"} <= set(ds.column_names)
    assert gallery.embeddings.shape == (len(gallery), 96) and gallery.embeddings.dtype == np.float32
    assert all(f"{c}_{t}" == lab for c, t, lab in zip(gallery.colours, gallery.types, gallery.labels))
    assert gallery.tasks == ("type", "colour")
    assert gallery.image(0).mode == "RGB"


def test_save_load_roundtrip_keeps_embeddings_and_spec(gallery, gallery_dir):
    assert (gallery_dir / SPEC_FILE).is_file()
    loaded = Gallery.load(gallery_dir)
    np.testing.assert_array_equal(loaded.embeddings, gallery.embeddings)
    assert loaded.spec == gallery.spec
    assert list(loaded.labels) == list(gallery.labels)
    assert np.array_equal(np.asarray(loaded.image(5)), np.asarray(gallery.image(5)))


def test_float16_storage(image_folder, extractor, gallery, tmp_path):
    records = scan_image_folder(image_folder)[:10]
    g16, _ = build_gallery(records, extractor, dtype="float16", progress=False)
    assert g16.spec.dtype == "float16"
    g16.save(tmp_path / "g16")
    loaded = Gallery.load(tmp_path / "g16")
    assert loaded.embeddings.dtype == np.float32
    np.testing.assert_allclose(loaded.embeddings, gallery.embeddings[:10], rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="dtype"):
        build_gallery(records, extractor, dtype="int8", progress=False)


def test_unreadable_images_are_reported_not_lost(tmp_path, extractor):
    write_image_folder(tmp_path, classes=["red_dress"], per_class=2)
    (tmp_path / "red_dress" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    g, errors = build_gallery(scan_image_folder(tmp_path), extractor, progress=False)
    assert len(g) == 2
    assert list(errors) == ["red_dress/broken.jpg"]


def test_missing_local_gallery_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Gallery.load(tmp_path / "nope")


def test_image_bytes_are_the_stored_file(gallery, image_folder):
    data, suffix = gallery.image_bytes(3)
    rel = gallery.dataset[3]["path"]
    assert suffix == ".png" and data == (image_folder / rel).read_bytes()


def test_image_bytes_reencode_outside_allowed_suffixes(gallery):
    data, suffix = gallery.image_bytes(3, {".jpg"})
    assert suffix == ".png" and data.startswith(b"\x89PNG")
    from cbir.images import load_image

    assert np.array_equal(np.asarray(load_image(data)), np.asarray(gallery.image(3)))


# --- a gallery whose embeddings do not match its spec is refused, naming the mismatch ----------------------


def _resaved(gallery, tmp_path, storage=None, spec_changes=None):
    import dataclasses

    import datasets

    from cbir.gallery.dataset import SPEC_FILE

    ds = gallery.dataset
    if storage:
        ds = ds.cast_column("embedding", datasets.List(datasets.Value(storage), length=gallery.spec.dim))
    ds.save_to_disk(str(tmp_path / "g"))
    dataclasses.replace(gallery.spec, **(spec_changes or {})).save(tmp_path / "g" / SPEC_FILE)
    return tmp_path / "g"


@pytest.mark.parametrize(
    "dtype, spec_changes, fragments",
    [
        (None, {"dim": 128}, ["embeddings are 96-d", "says 128-d"]),
        ("float16", {}, ["embeddings are float16", "says float32"]),
        (None, {"dtype": "float16", "dim": 64}, ["are 96-d, float32", "says 64-d, float16"]),
        ("float64", {"dtype": "float64"}, ["stored as float64", "float32 and float16"]),
    ],
)
def test_a_gallery_not_matching_its_spec_is_refused(gallery, tmp_path, dtype, spec_changes, fragments):
    from cbir.gallery.dataset import GalleryMismatchError

    folder = _resaved(gallery, tmp_path, dtype, spec_changes)
    with pytest.raises(GalleryMismatchError) as err:
        Gallery.load(folder)
    for fragment in fragments:
        assert fragment in str(err.value)
    assert "build_index.py" in str(err.value)


def test_a_spec_that_does_not_describe_the_embeddings_is_refused(gallery, tmp_path):
    import json

    from cbir.embed.spec import BackboneMismatchError

    folder = _resaved(gallery, tmp_path)
    spec = json.loads((folder / "embedding_spec.json").read_text())
    del spec["model"]
    (folder / "embedding_spec.json").write_text(json.dumps(spec))
    with pytest.raises(BackboneMismatchError, match="the embedding spec lacks model"):
        Gallery.load(folder)
