"""benchmarks/ablation.py: backbone labels, the split digest, and merging runs into one table (--append)."""

import numpy as np

from benchmarks.ablation import backbone_label, markdown, merge_reports, split_digest
from cbir.embed.spec import EmbeddingSpec
from cbir.similarity.pairs import ImageSplit, Pairs


def _spec(model: str, weights: str = "pretrained", seed=None) -> EmbeddingSpec:
    return EmbeddingSpec(model=model, weights=weights, dim=8, data_config={}, seed=seed)


def test_backbone_label_names_the_backbone_and_a_random_init():
    assert backbone_label(_spec("tf_efficientnet_lite2")) == "Lite2"
    assert backbone_label(_spec("vgg16.tv_in1k", "random", 0)) == "VGG16 random init (seed 0)"
    assert backbone_label(_spec("resnet18")) == "resnet18"


def _split_pairs(shift: int = 0) -> tuple[ImageSplit, dict]:
    split = ImageSplit(np.arange(0, 6), np.arange(6, 10), 0, 0)
    p = Pairs(np.array([6, 7]), np.array([8, 9 - shift]), np.array([1, 0], dtype=np.int8))
    return split, {"type": {"test": p, "train": Pairs(np.array([0]), np.array([1]), np.array([1], dtype=np.int8))}}


def test_split_digest_is_equal_for_equal_splits_and_pairs_only():
    assert split_digest(*_split_pairs()) == split_digest(*_split_pairs())
    assert split_digest(*_split_pairs()) != split_digest(*_split_pairs(shift=1))
    split, pairs = _split_pairs()
    moved = ImageSplit(np.arange(0, 5), np.arange(5, 10), 0, 0)
    assert split_digest(split, pairs) != split_digest(moved, pairs)


def _row(features: str, scoring: str, pearson: float) -> dict:
    c = {"pearson": pearson, "spearman": pearson, "roc_auc": pearson}
    r = {"map@10": 0.5, "p@1": 0.5, "p@10": 0.5}
    return {"key": scoring, "features": features, "scoring": scoring, "correlation": {"type": c, "colour": c},
            "retrieval": {"type": r, "colour": r, "both": r}, "latency_ms": 1.0, "self_top": {"type": 1.0}}


def test_merge_keeps_old_rows_tags_runs_and_replaces_a_remeasured_row():
    legacy = {"gallery": {"size": 10, "backbone": {"model": "m"}}, "split": {"test_images": 4}, "queries": 4,
              "rows": [_row("Lite2", "cosine", 0.1), _row("Lite2", "pairwise LR", 0.2)], "second_source": {"cosine": {}}}
    new = {"runs": [{"id": "r1", "command": "python benchmarks/ablation.py --append", "note": "busy"}],
           "rows": [_row("Lite2", "pairwise LR", 0.3), _row("VGG16", "cosine", 0.05)], "second_source": {"VGG16: cosine": {}}}
    merged = merge_reports(legacy, new)
    assert [r["id"] for r in merged["runs"]] == ["r1", "r2"]
    assert merged["runs"][1]["note"] == "busy" and merged["runs"][0]["command"] is None
    got = {(r["features"], r["scoring"]): (r["run"], r["correlation"]["type"]["pearson"]) for r in merged["rows"]}
    assert got == {("Lite2", "cosine"): ("r1", 0.1), ("Lite2", "pairwise LR"): ("r2", 0.3), ("VGG16", "cosine"): ("r2", 0.05)}
    assert set(merged["second_source"]) == {"cosine", "VGG16: cosine"}
    assert legacy["rows"][0].get("run") is None  # the input is not modified
    again = merge_reports(merged, {**new, "rows": [_row("VGG16", "euclidean", 0.04)]})
    assert [r["id"] for r in again["runs"]] == ["r1", "r2", "r3"] and len(again["rows"]) == 4


def test_markdown_has_a_run_column_only_for_several_runs():
    one = markdown([_row("Lite2", "cosine", 0.1)])
    assert "Run" not in one and "| Lite2 | cosine | 0.100 / 0.100 / 0.100 |" in one
    two = markdown([{**_row("Lite2", "cosine", 0.1), "run": "r1"}, {**_row("VGG16", "cosine", 0.05), "run": "r2"}])
    lines = two.splitlines()
    assert lines[0].endswith("| Run |") and lines[2].endswith("| r1 |") and lines[3].endswith("| r2 |")
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_append_run_on_a_tiny_gallery_labels_rows_and_records_the_split(gallery_dir, classifier_dir, tmp_path):
    import json

    from benchmarks.ablation import main

    out = tmp_path / "ablation.json"
    common = ["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--cache", str(tmp_path / "c"),
              "--out", str(out), "--queries", "20"]
    assert main([*common, "--only", "cosine"]) == 0
    assert main([*common, "--only", "euclidean", "--append", "--backbone-label", "Tiny", "--note", "idle"]) == 0
    report = json.loads(out.read_text())
    assert [(r["features"], r["scoring"], r["run"]) for r in report["rows"]] == [
        ("test_resnet.r160_in1k random init (seed 0)", "cosine", "r1"), ("Tiny", "inverse Euclidean", "r2")]
    r1, r2 = report["runs"]
    assert r1["split_sha256"] == r2["split_sha256"] and r2["note"] == "idle" and "--append" in r2["command"]
    assert "| r2 |" in out.with_suffix(".md").read_text()
