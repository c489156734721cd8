"""Every way a catalogue comes (cbir.gallery.sources, cbir.gallery.build): flat and nested folders, class folders,
CSV / JSON Lines / Parquet manifests, bad manifests, and a `datasets` source with any columns."""

import json

import datasets
import pytest

from cbir.gallery.build import build_gallery_streaming, dataset_chunks, partial_dir
from cbir.gallery.dataset import Gallery
from cbir.gallery.sources import (
    ManifestError, holdout_examples, read_folder, read_manifest, read_source, write_holdout,
)
from cbir.gallery.synthetic import garment_image

ROWS = [("sku-1", "a.png", "Red dress", 19.5), ("sku-2", "b.png", "Blue shoes", 45.0), ("sku-3", "c.png", "Hat", 9.0)]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of three photos at the top and one two levels down (by date), with a manifest in each format."""
    root = tmp_path_factory.mktemp("shop") / "photos"
    (root / "2024" / "05").mkdir(parents=True)
    for i, (_, name, _, _) in enumerate(ROWS):
        garment_image("red" if i == 0 else "blue", "dress" if i == 0 else "shoes", 32, i).save(root / name)
    garment_image("green", "pants", 32, 9).save(root / "2024" / "05" / "d.png")
    (root / "m.csv").write_text("id,image,title,price\n" + "".join(f"{i},{n},{t},{p}\n" for i, n, t, p in ROWS))
    (root / "m.jsonl").write_text("".join(json.dumps({"id": i, "image": n, "title": t, "price": p}) + "\n"
                                          for i, n, t, p in ROWS))
    datasets.Dataset.from_dict({"id": [r[0] for r in ROWS], "image": [r[1] for r in ROWS],
                                "title": [r[2] for r in ROWS], "price": [r[3] for r in ROWS]}
                               ).to_parquet(str(root / "m.parquet"))
    return root


def test_a_flat_folder_reads_every_image_at_any_depth_without_labels(photos):
    cat = read_source(photos)
    assert [r.id for r in cat.records] == ["2024/05/d", "a", "b", "c"]
    assert all(r.label.name == "" and r.label.type is None for r in cat.records)
    assert "flat folder" in cat.summary and "4 images at any depth" in cat.summary


def test_one_level_of_subfolders_reads_as_class_folders_and_labels_overrides(image_folder):
    cat = read_folder(image_folder)
    assert "class folders" in cat.summary and all(r.label.name for r in cat.records) and cat.records[0].id is None
    flat = read_folder(image_folder, labels="none")
    assert "flat folder" in flat.summary and all(not r.label.name for r in flat.records)
    assert flat.records[0].id == cat.records[0].relpath.rsplit(".", 1)[0]


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl", "m.parquet"])
def test_a_manifest_keeps_ids_and_every_other_column_as_metadata(photos, name):
    cat = read_manifest(photos / name)
    assert [r.id for r in cat.records] == ["sku-1", "sku-2", "sku-3"]
    assert cat.records[0].metadata == {"title": "Red dress", "price": 19.5}
    assert cat.records[1].path == photos / "b.png"
    assert "metadata title, price" in cat.summary


def test_manifest_labels_and_missing_ids(tmp_path, photos):
    (tmp_path / "m.csv").write_text(f"image,type,colour,link\n{photos / 'a.png'},Dress,red,http://x/1\n"
                                    f"{photos / 'b.png'},,,http://x/2\n")
    cat = read_manifest(tmp_path / "m.csv")
    assert [r.id for r in cat.records] == ["a", "b"]  # from the (absolute) image paths
    assert (cat.records[0].label.colour, cat.records[0].label.type, cat.records[0].label.name) == ("red", "dress", "red_dress")
    assert cat.records[1].label.name == "" and cat.records[1].metadata == {"link": "http://x/2"}


@pytest.mark.parametrize("body, error", [
    ("id,path\n1,a.png\n", "has no 'image' column.*its columns: id, path"),
    ("id,image\n1,a.png\n1,b.png\n", "row 2: id '1' repeats row 1"),
    ("id,image\n1,a.png\n2,nowhere.png\n", "row 2: image file not found"),
    ("id,image\n1,a.png\n2,junk.png\n", "row 2: unreadable image"),
])
def test_a_bad_manifest_is_a_clear_error_naming_the_row_or_skipped(photos, tmp_path, body, error):
    (photos / "junk.png").write_bytes(b"not an image at all")
    manifest = photos / "bad.csv"
    manifest.write_text(body)
    with pytest.raises(ManifestError, match=error):
        read_manifest(manifest)
    if "image" in body.splitlines()[0]:
        cat = read_manifest(manifest, skip_bad=True)
        assert len(cat.records) == 1 and list(cat.skipped) == ["row 2"]


def test_manifest_gallery_and_holdout(photos, extractor, tmp_path):
    cat = read_manifest(photos / "m.csv")
    kept, held, path = write_holdout(cat.records, 1, tmp_path / "g")
    assert len(kept) == 2 and path == tmp_path / "holdout.json"
    g, errors = build_gallery_streaming(kept, extractor, tmp_path / "g", log=lambda s: None)
    assert not errors and list(g.ids) == [r.id for r in kept]
    assert g.metadata(0) == kept[0].metadata and g.predicted(0) == {}
    assert holdout_examples(tmp_path / "g") == [held[0].path]
    assert holdout_examples(tmp_path / "other") == []  # listed for another gallery


def test_a_datasets_source_with_any_columns(photos, extractor, tmp_path):
    source = tmp_path / "source"
    datasets.Dataset.from_dict(
        {"image": [str(photos / r[1]) for r in ROWS], "sku": [r[0] for r in ROWS], "title": [r[2] for r in ROWS]},
        features=datasets.Features({"image": datasets.Image(), "sku": datasets.Value("string"),
                                    "title": datasets.Value("string")}),
    ).save_to_disk(str(source))
    chunks = dataset_chunks(source, 2, partial_dir(tmp_path / "g"))
    assert "metadata sku, title" in chunks.summary
    g, errors = build_gallery_streaming(chunks, extractor, tmp_path / "g", chunk=2, log=lambda s: None)
    assert not errors and len(g) == 3
    assert [g.metadata(i) for i in range(3)] == [{"sku": r[0], "title": r[2]} for r in ROWS]
    assert list(Gallery.load(tmp_path / "g").labels) == ["", "", ""]
