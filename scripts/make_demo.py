#!/usr/bin/env python
"""Rebuild the embedded demo (`demo/`) from photo folders: the whole recipe, step by step.

Steps (each skippable with --skip-STEP; a skipped step's outputs must already be in --work):
  cache               frozen maps of every training photo (Lite2's trunk, photo and mirror, whole photo)
  backbone            fine-tune the last two stages on the sources' fit photos; export the tail; register it
  galleries           embed every source with the new backbone (type/colour labels from the folder names)
  apparel-classifiers pair classifiers (logreg, forest) and attribute models on the Apparel gallery's split
  demo                the demo gallery (CC0 photos minus demo/holdout.json's) and its pair classifiers
  whitening           the hybrid's learned whitening of the Apparel training split, into the demo's classifiers
  attributes          the type and colour models chosen on validation across sources (cbir.train.attributes)
  hybrid-weights      the hybrid's per-task weights chosen on validation, written into the classifiers' manifest

Test photos stay test photos: every step uses the splits of cbir.train.splits (the demo's held-out photos, 30 % of
clothing-cc0-train and of clothing-cc0-more, 40 % of catalogue-dev, Apparel's test split are never trained on).
Your own photos: point --cc0 (the gallery's photos, one folder per type), --cc0-train, --apparel (colour_type
folders) and --catalogue at your folders; --cc0-more is optional. A backbone named other than the shipped one is
registered for this run only: serving it needs an entry in cbir/embed/backbones.py (see docs/demo.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.cli import run  # noqa: E402
from cbir.gallery.demo import DEMO_DIR, HOLDOUT_FILE  # noqa: E402
from cbir.similarity.pairs import DEFAULT_PAIRS_PER_TASK  # noqa: E402

DATA = Path("../shared/data")
STEPS = ("cache", "backbone", "galleries", "apparel-classifiers", "demo", "whitening", "attributes", "hybrid-weights")
SOURCES = {"cc0": "clothing-cc0", "cc0-train": "clothing-cc0-train", "cc0-more": "clothing-cc0-more",
           "apparel": "apparel-images", "catalogue": "catalogue-dev"}
BACKBONE = "tf_efficientnet_lite2_clothing_v3"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for key, folder in SOURCES.items():
        p.add_argument(f"--{key}", default=str(DATA / folder), help=f"photo folder (default: %(default)s)")
    p.add_argument("--no-cc0-more", action="store_true", help="leave clothing-cc0-more out of every step")
    p.add_argument("--work", default="build/demo-recipe", help="intermediate files (default: %(default)s)")
    p.add_argument("--out", default=str(DEMO_DIR), help="the demo folder written (default: %(default)s)")
    p.add_argument("--backbone", default=BACKBONE, help="name of the adapted backbone (default: %(default)s); with "
                   "--skip-cache --skip-backbone and no trained tail in --work, a registered backbone to use as is")
    p.add_argument("--holdout", default=str(DEMO_DIR / HOLDOUT_FILE),
                   help="the demo photos kept out of the gallery (kept as is when the file exists)")
    p.add_argument("--steps", type=int, default=600, help="training steps of the backbone's tail")
    p.add_argument("--pairs", type=int, default=DEFAULT_PAIRS_PER_TASK, help="pairs per task of the pair classifiers")
    p.add_argument("--tune-pairs", type=int, default=4000, help="validation pairs per task judging the hybrid's weights")
    p.add_argument("--tune-instance", type=int, default=300, help="validation photos queried by edited copies (weights)")
    p.add_argument("--seed", type=int, default=0)
    for step in STEPS:
        p.add_argument(f"--skip-{step}", action="store_true", help=f"skip the {step} step")
    return p


class Recipe:
    """The steps, their inputs and outputs under `work`; each step returns a line that says what it checked."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.work = Path(args.work)
        self.sources = {k: Path(getattr(args, k.replace("-", "_"))) for k in SOURCES
                        if not (k == "cc0-more" and args.no_cc0_more)}
        self.tail = self.work / "backbone" / "tail.pth"
        self.tensors = self.work / "backbone" / f"{args.backbone}.safetensors"

    def gallery_dir(self, key: str) -> Path:
        return self.work / "galleries" / key

    def photo_sets(self) -> dict:
        """The backbone's training sources: the demo's gallery photos and every other source's photos."""
        from cbir.train.photos import PhotoSet

        cc0 = PhotoSet.scan(self.sources["cc0"])
        held = set(self.holdout(cc0.records))
        sets = {"demo": PhotoSet(tuple(r for r in cc0.records if r.relpath not in held)),
                "cc0": PhotoSet.scan(self.sources["cc0-train"]), "apparel": PhotoSet.scan(self.sources["apparel"]),
                "catalogue": PhotoSet.scan(self.sources["catalogue"])}
        if "cc0-more" in self.sources:
            sets["more"] = PhotoSet.scan(self.sources["cc0-more"])
        return sets

    def holdout(self, records) -> list[str]:
        from cbir.train.demo import choose_holdout

        path = Path(self.a.holdout)
        return json.loads(path.read_text())["held_out"] if path.is_file() else choose_holdout(records, 2, self.a.seed)

    def cache(self) -> str:
        from cbir.train.backbone import cache_maps

        sets = self.photo_sets()
        for key, photos in sets.items():
            cache_maps(photos, self.work / "cache" / key)
        return ", ".join(f"{k} {len(v)} photos" for k, v in sets.items()) + " cached"

    def backbone(self) -> str:
        from cbir.train.backbone import TailOptions, export_tail, train_tail

        sets = self.photo_sets()
        card = train_tail(sets, {k: self.work / "cache" / k for k in sets}, self.tail,
                          TailOptions(steps=self.a.steps, seed=self.a.seed))
        info = export_tail(self.tail, self.tensors)
        self.register()
        return f"{info['tensors']} tensors, sha256 {info['sha256'][:12]}; heads at the end: {card['history'][-1]}"

    def register(self) -> str:
        """The backbone the galleries are embedded with: the trained tail in `work`, or a registered one."""
        from cbir.embed.backbones import list_backbones, register_adapted

        if self.tensors.is_file() and self.a.backbone not in list_backbones():
            register_adapted(self.a.backbone, self.tensors, "EfficientNet-Lite2 adapted by scripts/make_demo.py")
        if self.a.backbone not in list_backbones():
            raise SystemExit(f"no trained tail {self.tensors} and no registered backbone {self.a.backbone!r}")
        return self.a.backbone

    def galleries(self) -> str:
        from cbir.embed.extractor import FeatureExtractor
        from cbir.gallery.dataset import build_gallery, scan_image_folder

        extractor = FeatureExtractor(self.register(), device="cpu", seed=self.a.seed)
        sizes = {}
        for key, folder in self.sources.items():
            gallery, errors = build_gallery(scan_image_folder(folder), extractor, batch_size=16)
            if errors:
                print(f"{key}: {len(errors)} photos could not be read and were left out: {list(errors)[:3]}")
            shutil.rmtree(self.gallery_dir(key), ignore_errors=True)
            gallery.save(self.gallery_dir(key))
            sizes[key] = len(gallery)
        return ", ".join(f"{k} {n}" for k, n in sizes.items()) + f" photos embedded with {self.a.backbone}"

    def apparel_classifiers(self) -> str:
        from cbir.gallery.dataset import Gallery
        from cbir.similarity.training import train

        out = self.work / "apparel-classifiers"
        shutil.rmtree(out, ignore_errors=True)
        run_ = train(Gallery.load(self.gallery_dir("apparel")), n_pairs=self.a.pairs, seed=self.a.seed, whitening_dim=0)
        return f"{len(run_.save(out))} files in {out}"

    def demo(self) -> str:
        from cbir.train.demo import build_demo

        self.register()
        gallery, report, written = build_demo(self.sources["cc0"], self.work / "apparel-classifiers",
                                              out_dir=self.a.out, model=self.a.backbone, n_pairs=self.a.pairs,
                                              seed=self.a.seed)
        kept = {k: v["chosen"] for k, v in report["type_source"].items()}
        return f"{len(gallery)} photos, {len(report['held_out'])} held out, type pair classifiers from {kept}"

    def whitening(self) -> str:
        from cbir.train.whitening import fit_whitening_into

        self.register()
        card = fit_whitening_into(self.gallery_dir("apparel"), Path(self.a.out) / "classifiers",
                                  split_from=self.work / "apparel-classifiers")
        return f"whitening {json.dumps(card)}"

    def attributes(self) -> str:
        from cbir.train.attributes import main as attributes

        g = self.gallery_dir
        more = ["--cc0-more", str(g("cc0-more"))] if "cc0-more" in self.sources else []
        report = self.work / "attributes.json"
        attributes(["--demo", str(Path(self.a.out) / "gallery"), "--demo-classifiers", str(Path(self.a.out) / "classifiers"),
                    "--holdout", str(Path(self.a.out) / HOLDOUT_FILE), "--apparel", str(g("apparel")),
                    "--cc0", str(g("cc0")), "--cc0-train", str(g("cc0-train")), "--catalogue", str(g("catalogue")),
                    *more, "--seed", str(self.a.seed), "--out", str(report), "--write", str(Path(self.a.out) / "classifiers")])
        return f"chosen on validation: {json.loads(report.read_text())['chosen on validation']} (report {report})"

    def hybrid_weights(self) -> str:
        from cbir.train.hybrid import TuneOptions, tune_into

        self.register()
        options = TuneOptions(pairs=self.a.tune_pairs, instance=self.a.tune_instance, seed=self.a.seed)
        weights = tune_into(self.gallery_dir("apparel"), self.work / "apparel-classifiers", Path(self.a.out) / "classifiers",
                            options)
        return f"hybrid weights {json.dumps(weights)}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    recipe = Recipe(args)
    missing = [str(f) for f in recipe.sources.values() if not f.is_dir()]
    if missing:
        raise SystemExit(f"photo folders not found: {missing}")
    times = {}
    for step in STEPS:
        if getattr(args, f"skip_{step.replace('-', '_')}"):
            print(f"== {step}: skipped", flush=True)
            continue
        print(f"== {step}", flush=True)
        t0 = time.time()
        do: Callable[[], str] = getattr(recipe, step.replace("-", "_"))
        said = do()
        times[step] = round(time.time() - t0)
        print(f"== {step}: {said} ({times[step] / 60:.1f} min)", flush=True)
    print("minutes per step: " + json.dumps({k: round(v / 60, 1) for k, v in times.items()}))
    recipe.work.mkdir(parents=True, exist_ok=True)
    (recipe.work / "times.json").write_text(json.dumps(times, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
