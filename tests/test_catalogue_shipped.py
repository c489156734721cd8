"""An unlabelled catalogue with build_index.py's defaults and no training: the demo's backbone, its shipped type and
colour models (predicted at build time, a manifest label wins) and the hybrid ranking when served with no
--classifiers; and train_classifiers.py on a 60-image gallery."""

import pytest

import app
from cbir.gallery.dataset import Gallery
from scripts.build_index import main as build_index
from cbir.gallery.synthetic import garment_image, write_image_folder
from scripts.train_classifiers import main as train_classifiers

ITEMS = [("red", "dress"), ("blue", "shoes"), ("black", "pants"), ("white", "shirt"), ("green", "shorts")]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    for i, (colour, garment) in enumerate(ITEMS):
        garment_image(colour, garment, 96, i).save(root / f"{garment}-{i}.jpg")
    (root / "products.csv").write_text("id,image,title,price,type\n" + "".join(
        f"sku{i},{g}-{i}.jpg,{c} {g},{i + 1}.99,{'dress' if i == 0 else ''}\n" for i, (c, g) in enumerate(ITEMS)))
    return root


@pytest.mark.parametrize("source", ["products.csv", "."])
def test_defaults_index_and_serve_an_unlabelled_catalogue_with_the_shipped_models(shop, tmp_path, source, capsys):
    out = tmp_path / "gallery"
    assert build_index([str(shop / source), "--out", str(out)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("read manifest" if source.endswith(".csv") else f"read {shop / source} as a flat folder")
    g = Gallery.load(out)
    assert g.spec.model == "tf_efficientnet_lite2_clothing_v2" and set(g.tasks) == {"type", "colour"}
    engine = app.build_engine(app.parse_args(["--gallery", str(out), "--device", "cpu"]))
    assert engine.classifiers is not None and engine.default_method() == "hybrid"
    answer = engine.answer(shop / "shoes-1.jpg", k=3)
    assert answer["method"] == "hybrid" and answer["query"]["type"]["value"]
    hit = answer["results"][0]
    assert set(hit["predicted"]) >= {"colour"} and 0 < hit["predicted"]["colour"] <= 1
    if source.endswith(".csv"):
        assert hit["id"] == "sku1" and hit["metadata"] == {"title": "blue shoes", "price": 2.99}
        labelled = list(g.ids).index("sku0")
        assert g.types[labelled] == "dress" and "type" not in g.predicted(labelled)  # the manifest's label wins
    else:
        assert hit["id"] == "shoes-1" and hit["metadata"] == {}
    wanted = str(g.types[0])
    filtered = engine.search(shop / "shoes-1.jpg", k=5, filters={"type": [wanted]})
    assert filtered and all(h.type == wanted for h in filtered)
    plain = app.build_engine(app.parse_args(["--gallery", str(out), "--device", "cpu", "--classifiers", "none"]))
    assert plain.classifiers is None and plain.default_method() == "cosine"


def test_a_gallery_of_another_backbone_gets_cosine(gallery_dir):
    engine = app.build_engine(app.parse_args(["--gallery", str(gallery_dir), "--device", "cpu"]))
    assert engine.classifiers is None and engine.default_method() == "cosine"


def test_train_classifiers_on_a_60_image_gallery_draws_the_pairs_it_allows(extractor, tmp_path, capsys):
    from cbir.gallery.dataset import build_gallery, scan_image_folder

    classes = ["black_dress", "blue_dress", "red_dress", "black_shoes", "blue_shoes", "red_shoes",
               "black_pants", "blue_pants", "white_shirt", "green_shirt", "brown_shorts", "white_shorts"]
    write_image_folder(tmp_path / "images", classes, per_class=5, size=32)
    g, _ = build_gallery(scan_image_folder(tmp_path / "images"), extractor, progress=False)
    assert len(g) == 60
    g.save(tmp_path / "g")
    assert train_classifiers(["--gallery", str(tmp_path / "g"), "--out", str(tmp_path / "c"), "--whitening-dim", "0",
                              "--kinds", "logreg", "attribute"]) == 0
    out = capsys.readouterr().out
    assert "pairs: asked for 5692 per task; this gallery allows" in out and (tmp_path / "c" / "classifiers.json").is_file()
    small = g.dataset.select([i for i in range(60) if not (g.labels[i] == "red_dress" and i % 5 < 2)])
    Gallery(small, g.spec, g.colour_spec).save(tmp_path / "small")
    with pytest.raises(ValueError, match=r"class 'red_dress' \(3\).*at least 4"):
        train_classifiers(["--gallery", str(tmp_path / "small"), "--out", str(tmp_path / "c2")])
