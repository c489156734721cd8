"""benchmarks/store_methods.py on the fixture gallery: exact backends report the in-process ranking."""

from __future__ import annotations

import pytest

from benchmarks import store_methods


def test_exact_backends_report_full_recall(gallery_dir, classifier_dir, capsys):
    pytest.importorskip("faiss")
    args = ["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--methods", "attribute", "cosine",
            "--queries", "6", "--stores", "numpy", "faiss:flat"]
    assert store_methods.main(args) == 0
    rows = [ln.split("|")[1:-1] for ln in capsys.readouterr().out.splitlines() if ln.startswith("| numpy") or ln.startswith("| faiss")]
    assert len(rows) == 2 * 2 * 3 * 3  # stores x methods x tasks x filters
    assert all(float(r[4]) == 1.0 and float(r[5]) == pytest.approx(1.0) for r in rows)
