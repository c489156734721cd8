#!/usr/bin/env python
"""What a shopper sees (issue 38): per photo source and per method, P@1, P@5, a right type anywhere in the top 5
(any-right@5) and nDCG@10, macro over the queries' types, on held-out photos searching the demo gallery; the colour
of the answer's `query` on catalogue shots; instance recall of edited copies.

Galleries as scripts/train_attributes.py takes them (built with the demo's backbone and colour descriptor); the splits
and the validation stage are cbir.train.calibration's (what scripts/calibrate.py writes into the cards):

    python -m benchmarks.shopper --cc0 /tmp/src/cc0 --cc0-train /tmp/src/cc0-train --catalogue /tmp/src/catalogue \
        [--apparel /tmp/src/apparel] --out results/shopper.json

Validation stage: the served recipes refitted on the fit parts, temperatures fitted and the hedge's settings chosen on
the validation photos (cbir.train.calibration.HEDGE_RULE). Test stage: the served models (`--classifiers`, their
stored temperature and settings) on the test photos, never read before.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.index import top_k  # noqa: E402
from cbir.similarity.hedge import HedgeSettings  # noqa: E402
from cbir.similarity.registry import get_method  # noqa: E402
from cbir.train.attributes import Part, class_accuracy  # noqa: E402
from cbir.train.calibration import (HEDGE_RULE, Sources, load_sources, method_scorers, print_rows,  # noqa: E402
                                    score_sources, source_arguments, type_query_sets, validation_stage)


def instance_copies(engine: Any, rows: np.ndarray, seed: int, cache: Optional[str]) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and colour descriptors of the edited copies (cbir.similarity.instance.edited_copy) of gallery `rows`,
    made as a shopper's upload would be read (the engine's extractor and descriptor); cached in `cache` (.npz)."""
    from cbir.images import load_image
    from cbir.similarity.instance import edited_copy

    if cache and Path(cache).exists():
        z = np.load(cache)
        if np.array_equal(z["rows"], rows):
            return z["x"], z["d"]
    g = engine.gallery
    copies = [load_image(edited_copy(g.image_bytes(int(r))[0], seed * 1_000_003 + int(r))) for r in rows]
    x = np.vstack([engine.embed_batch(copies[s:s + 16]) for s in range(0, len(copies), 16)])
    d = np.stack([engine.describe(c) for c in copies])
    if cache:
        np.savez(cache, rows=rows, x=x, d=d)
    return x, d


def instance_figures(engine: Any, rows: np.ndarray, x: np.ndarray, d: np.ndarray) -> dict[str, dict[str, float]]:
    """R@1 and R@5 (that very file, or a byte-identical one) of the edited copies through the engine (the API's
    default: the hedged hybrid), and per method scored directly (the plain hybrid, cosine)."""
    hashes = np.asarray(engine.gallery.hashes).astype(str)
    out = {}
    for name in ("default (engine)", "hybrid plain", "cosine"):
        if name == "default (engine)":
            s = np.vstack([engine.score_matrix(x[i:i + 64], None, "type", d[i:i + 64]) for i in range(0, len(x), 64)])
        else:
            s = get_method(name.split()[0]).score(x, engine.index, task="type", classifiers=engine.classifiers,
                                                  query_descriptors=d)
        idx, _ = top_k(s, 5)
        hit = hashes[idx] == hashes[rows][:, None]
        out[name] = {"r@1": float(hit[:, 0].mean()), "r@5": float(hit.any(1).mean()), "queries": int(len(rows)),
                     "misses": [int(r) for r in rows[~hit[:, 0]]]}
    return out


# -- main ---------------------------------------------------------------------------------------------------------

def test_stage(src: Sources, cc0: Gallery, holdout: str) -> dict[str, Any]:
    """The served models (their stored temperatures and hedge settings) on the test photos."""
    held = {Path(h).stem for h in json.loads(Path(holdout).read_text())["held_out"]}
    demo_hold = Part.of("demo held-out", cc0, np.flatnonzero([i in held for i in cc0.ids]))
    test_parts = {k: Part.of(f"{k} test", src.galleries[k], te) for k, (_, te) in src.splits.items()}
    test_parts["cc0"] = test_parts["cc0"].plus(demo_hold, "CC0 held-out (cc0-train test + demo 20)")
    shipped = src.shipped
    settings = HedgeSettings.from_card(shipped.get("attribute", "type").card)
    rows = score_sources(type_query_sets(test_parts, src.demo.types), method_scorers(src.index, shipped, settings))
    print_rows("test", rows)
    colour = {k: class_accuracy(shipped.get("attribute", "colour"), test_parts[k]) for k in ("catalogue", "apparel")
              if k in test_parts}
    for k, c in colour.items():
        print(f"test colour of the query, {k}: {c['accuracy']:.3f} (macro {c['macro']:.3f})", flush=True)
    return {"hedge settings (served)": settings.to_dict(), "rows": rows, "colour of the query": colour,
            "temperatures (served)": {t: shipped.get("attribute", t).temperature for t in ("type", "colour")}}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source_arguments(p)
    p.add_argument("--cc0", required=True, help="gallery of all of clothing-cc0 (the demo's 20 held-out photos)")
    p.add_argument("--holdout", default="demo/holdout.json")
    p.add_argument("--stage", choices=("validation", "test", "both"), default="both")
    p.add_argument("--instance", type=int, default=0, help="also score edited copies of this many demo photos (0: none)")
    p.add_argument("--instance-cache", help=".npz cache of the copies' embeddings")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    t0 = time.time()
    src = load_sources(args)
    report: dict[str, Any] = {"command": "python -m benchmarks.shopper " + shlex.join(argv if argv is not None else sys.argv[1:]),
                              "hedge rule": HEDGE_RULE,
                              "split sizes": {k: [len(a), len(b)] for k, (a, b) in src.splits.items()}}
    if args.stage in ("validation", "both"):
        print("== validation", flush=True)
        report["validation"] = validation_stage(src)
    if args.stage in ("test", "both"):
        print("== test", flush=True)
        report["test"] = test_stage(src, Gallery.load(args.cc0), args.holdout)
    if args.instance:
        from cbir.search.loading import load_engine

        engine = load_engine(args.demo, args.classifiers)
        n = len(engine.gallery)
        rows = np.sort(np.random.default_rng(args.seed).choice(n, min(args.instance, n), replace=False))
        report["instance"] = instance_figures(engine, rows, *instance_copies(engine, rows, args.seed, args.instance_cache))
        for k, v in report["instance"].items():
            print(f"instance {k:18s} R@1 {v['r@1']:.3f} R@5 {v['r@5']:.3f} (n={v['queries']})", flush=True)
    report["seconds"] = round(time.time() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
