"""The demo gallery and its pair classifiers (one step of scripts/make_demo.py's recipe).

Needs the Apparel Images Dataset's classifiers for the same backbone (colour, and the Apparel candidate for
type), as written by: build_index.py <apparel-images> --out G && train_classifiers.py --gallery G --out C.

The demo's labels give a type and no colour: colour classifiers come from the Apparel Images Dataset (same
backbone); for type, each classifier kind is trained on the CC0 training split and on the Apparel dataset, and
the one with the higher ROC-AUC on the demo's held-out type pairs is kept. A few photos per type are held out
of the gallery (`demo/holdout.json`), among them the three in tests/data/cc0/.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from cbir.embed.colour import ColourSpec
from cbir.embed.extractor import FeatureExtractor
from cbir.gallery.dataset import Gallery, ImageRecord, build_gallery, scan_image_folder
from cbir.gallery.demo import CC0_SOURCE, DEMO_DIR, DEMO_MODEL, HOLDOUT_FILE
from cbir.similarity.classifiers import CLASSIFIER_KINDS, ClassifierSet
from cbir.similarity.evaluation import correlations
from cbir.similarity.pairs import DEFAULT_PAIRS_PER_TASK
from cbir.similarity.training import train

APPAREL_SOURCE = "Apparel Images Dataset (trolukovich/apparel-images-dataset on Kaggle)"
# Photos that tests use as queries not in the demo (tests/data/cc0/); always held out.
ALWAYS_HELD_OUT = (
    "dress/0b5f7f85-fa44-4406-91ed-6b730e4b6fa1.jpg",
    "shoes/132e5fa5-ed38-4293-8dff-20727b6b5ac2.jpg",
    "tshirt/0af4203f-8998-4719-92fe-65c14a6b6093.jpg",
)


def choose_holdout(records: Sequence[ImageRecord], per_type: int = 2, seed: int = 0) -> list[str]:
    """`per_type` photos of each class left out of the gallery (seeded), including ALWAYS_HELD_OUT."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for label in sorted({r.label.name for r in records}):
        paths = [r.relpath for r in records if r.label.name == label]
        forced = [p for p in paths if p in ALWAYS_HELD_OUT]
        rest = [p for p in paths if p not in forced]
        n = max(0, min(per_type - len(forced), len(rest)))
        out += forced + [rest[i] for i in sorted(rng.choice(len(rest), size=n, replace=False))]
    return sorted(out)


def _type_auc(classifiers: ClassifierSet, kind: str, gallery: Gallery, pairs) -> dict[str, float]:
    x, d = gallery.embeddings, gallery.descriptors
    desc = None if d is None else (d[pairs.left], d[pairs.right])
    proba = classifiers.score_pairs(kind, "type", x[pairs.left], x[pairs.right], descriptors=desc)
    metrics = {k: v for k, v in correlations(proba, pairs.label).items() if k != "n"}
    return {"test_pairs": len(pairs), "accuracy": float(((proba > 0.5) == pairs.label.astype(bool)).mean()), **metrics}


def build_demo(
    cc0_dir: str | os.PathLike,
    apparel_classifiers: str | os.PathLike,
    *,
    out_dir: str | os.PathLike = DEMO_DIR,
    model: str = DEMO_MODEL,
    weights: str = "pretrained",
    per_type_holdout: int = 2,
    n_pairs: int = DEFAULT_PAIRS_PER_TASK,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Gallery, dict, list[Path]]:
    """Embed the CC0 photos (minus the held-out ones), pick each type classifier's source, write `out_dir`.

    `apparel_classifiers` is what `scripts/train_classifiers.py` wrote for the Apparel dataset embedded with
    the same backbone. Returns the gallery, a report (holdout, type-source comparison) and the files written.
    """
    out_dir = Path(out_dir)
    records = scan_image_folder(cc0_dir)
    holdout = choose_holdout(records, per_type_holdout, seed)
    kept = [r for r in records if r.relpath not in set(holdout)]
    extractor = FeatureExtractor(model, weights=weights, device="cpu", seed=seed)
    apparel = ClassifierSet.load(apparel_classifiers)
    recipes = [c.card["colour"] for c in apparel.classifiers.values() if c.card.get("colour")]
    colour = ColourSpec.from_dict(recipes[0]) if recipes else ColourSpec()  # the Apparel models' descriptor recipe
    gallery, errors = build_gallery(kept, extractor, batch_size=16, progress=progress, colour=colour)
    if errors:
        raise RuntimeError(f"CC0 photos failed to load: {errors}")
    apparel.check_backbone(gallery.spec, gallery.colour_spec)  # same backbone and colour-descriptor recipe

    run = train(gallery, tasks=("type",), n_pairs=n_pairs, seed=seed, progress=progress)  # CC0 training split, type only
    test_pairs = run.pairs["type"]["test"]
    chosen = {}
    comparison = {}
    for kind in CLASSIFIER_KINDS:
        if (kind, "type") not in apparel:
            continue
        cc0_m = _type_auc(run.classifiers, kind, gallery, test_pairs)
        app_m = _type_auc(apparel, kind, gallery, test_pairs)
        source = "clothing-cc0" if cc0_m["roc_auc"] >= app_m["roc_auc"] else "apparel-images"
        clf = (run.classifiers if source == "clothing-cc0" else apparel).get(kind, "type")
        clf.card = {
            **clf.card,
            "train_source": CC0_SOURCE + " (demo training split)" if source == "clothing-cc0" else APPAREL_SOURCE,
            "metrics_source": "demo (CC0) held-out type pairs",
            "metrics": cc0_m if source == "clothing-cc0" else app_m,
            "source_comparison": {"clothing-cc0": cc0_m, "apparel-images": app_m, "chosen": source,
                                  "criterion": "ROC-AUC on the demo's held-out type pairs"},
        }
        chosen[(kind, "type")] = clf
        comparison[kind] = clf.card["source_comparison"]
        colour = apparel.get(kind, "colour")
        colour.card = {**colour.card, "train_source": APPAREL_SOURCE,
                       "metrics_source": f"{APPAREL_SOURCE} held-out colour pairs"}
        chosen[(kind, "colour")] = colour

    for sub in ("gallery", "classifiers"):  # no stale files of an older demo
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    gallery.save(out_dir / "gallery")
    (out_dir / HOLDOUT_FILE).write_text(json.dumps({"source": CC0_SOURCE, "held_out": holdout}, indent=2) + "\n")
    run.classifiers = ClassifierSet(chosen)
    run.meta = {**run.meta, "note": "pairs and split of the demo gallery (type only); colour classifiers were "
                "trained on the Apparel Images Dataset"}
    written = run.save(out_dir / "classifiers")
    report = {"images": len(gallery), "held_out": holdout, "type_source": comparison}
    return gallery, report, written + [out_dir / HOLDOUT_FILE]
