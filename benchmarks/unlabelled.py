#!/usr/bin/env python
"""An unlabelled catalogue served with no training (issue 35): build a gallery from a flat folder of CC0 photos no
shipped model ever saw, with build_index.py's defaults, serve it as `app.py --gallery G` does (no --classifiers: the
backbone's shipped attribute models), and query it with other unseen photos of the same source.

    python -m benchmarks.unlabelled --source ../shared/data/clothing-cc0-more --work /tmp/unlabelled \
        --out results/unlabelled-catalogue.json

The photos: clothing-cc0-more (never used for training or for choosing a setting), adults' photos of the demo's
types (`group = demo type`, `kids = no`). Per type, `--per-type` photos (seed 0) go into the gallery as one flat
folder of files named by their dataset ids (no labels: the types are the manifest's, kept out of the build); up to
`--queries-per-type` of the rest are the queries. P@K: the share of the top K whose (hidden) type is the query's,
macro over types (per query in brackets)."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cbir.search.loading import load_engine  # noqa: E402


def split(source: Path, per_type: int, queries: int, seed: int) -> tuple[dict[str, str], dict[str, str]]:
    """({photo path: type} for the gallery, {photo path: type} for the queries), adults' demo-type photos only."""
    rows = list(csv.DictReader(open(source / "MANIFEST.csv")))
    by_type: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r["group"] == "demo type" and r["kids"] == "no":
            by_type[r["label"]].append(str(source / r["label"] / (r["image"] + ".jpg")))
    rng = np.random.default_rng(seed)
    gallery, query = {}, {}
    for t, paths in sorted(by_type.items()):
        order = rng.permutation(sorted(paths))
        gallery.update({p: t for p in order[:per_type]})
        query.update({p: t for p in order[per_type : per_type + queries]})
    return gallery, query


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="../shared/data/clothing-cc0-more")
    p.add_argument("--work", required=True, help="scratch folder: the flat photo folder and the gallery")
    p.add_argument("--per-type", type=int, default=30, help="gallery photos per type")
    p.add_argument("--queries-per-type", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON report")
    args = p.parse_args(argv)

    source, work = Path(args.source), Path(args.work)
    in_gallery, queries = split(source, args.per_type, args.queries_per_type, args.seed)
    flat = work / "photos"
    flat.mkdir(parents=True, exist_ok=True)
    for path in in_gallery:
        link = flat / Path(path).name
        if not link.exists():
            link.symlink_to(Path(path).resolve())
    out = work / "gallery"
    if not out.exists():
        # the defaults, as a user runs it: the demo's backbone, the shipped models' predictions
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_index.py"), str(flat), "--out", str(out)], check=True)
    engine = load_engine(str(out), shipped=True)  # what `python app.py --gallery OUT` serves
    truth = {Path(p).stem: t for p, t in in_gallery.items()}
    types = np.array([truth[str(i)] for i in engine.gallery.ids])
    hits_at: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])
    predicted_right: dict[str, list[bool]] = defaultdict(list)
    t0 = time.perf_counter()
    method = engine.default_method()
    for path, t in queries.items():
        answer = engine.answer(path, k=5)
        got = types[[h["index"] for h in answer["results"]]]
        hits_at[t][0].append(float(got[0] == t))
        hits_at[t][1].append(float(np.mean(got[:5] == t)))
        predicted_right[t].append(answer["query"].get("type", {}).get("value") == t)
    elapsed = time.perf_counter() - t0
    per_type = {t: {"queries": len(v[0]), "p@1": round(float(np.mean(v[0])), 3), "p@5": round(float(np.mean(v[1])), 3)}
                for t, v in sorted(hits_at.items())}
    report = {
        "command": "python -m benchmarks.unlabelled " + " ".join(argv if argv is not None else sys.argv[1:]),
        "gallery": {"photos": len(engine.gallery), "per_type": args.per_type, "labels": "none (flat folder)"},
        "queries": len(queries),
        "method": method,
        "classifiers": "shipped with the backbone" if engine.classifiers is not None else "none",
        "type_p@1_macro": round(float(np.mean([v["p@1"] for v in per_type.values()])), 3),
        "type_p@5_macro": round(float(np.mean([v["p@5"] for v in per_type.values()])), 3),
        "type_p@1_per_query": round(float(np.mean([x for v in hits_at.values() for x in v[0]])), 3),
        "query_type_accuracy_macro": round(float(np.mean([np.mean(v) for v in predicted_right.values()])), 3),
        "gallery_type_accuracy": round(float(np.mean(engine.gallery.types == types)), 3),
        "per_type": per_type,
        "seconds_per_query": round(elapsed / max(1, len(queries)), 3),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
