#!/usr/bin/env python
"""Issue 18: colour on busy backgrounds, test photos. The catalogue-dev test shots (benchmarks/sources.py's split;
never used for training or choosing) pasted on floors, beds and carpets cut from demo photos, and the same shots as
shot, through the attribute colour model of each classifier folder with its own colour-descriptor recipe (the
demo's `border`; `salient`: the demo of commit 78d3d16, rebuilt with that recipe).

    mkdir -p /tmp/demo-salient && git archive 78d3d16 demo | tar -x -C /tmp/demo-salient --strip-components=1
    python -m benchmarks.busy_backgrounds --catalogue /tmp/src/catalogue \
        --classifiers border=demo/classifiers salient=/tmp/demo-salient/classifiers --out results/busy-backgrounds.json
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

from benchmarks.saliency import floors, paste_on  # noqa: E402
from benchmarks.sources import TEST_FRACTIONS, split  # noqa: E402
from cbir.embed.colour import ColourSpec, colour_descriptor  # noqa: E402
from cbir.embed.extractor import FeatureExtractor  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.similarity.classifiers import ClassifierSet  # noqa: E402


def colour_accuracy(classifiers: ClassifierSet, embeddings: np.ndarray, photos: Sequence[Any],
                    truth: np.ndarray) -> dict[str, Any]:
    """The attribute colour model's top class against `truth`, the photos described with the model's own recipe."""
    clf = classifiers.get("attribute", "colour")
    spec = ColourSpec.from_dict(clf.card["colour"])
    d = np.stack([colour_descriptor(p, spec) for p in photos])
    pred = np.asarray(clf.classes)[clf.probabilities(embeddings, d).argmax(1)]
    return {"weighting": spec.weighting, "accuracy": round(float((pred == truth).mean()), 4),
            "per colour": {c: round(float((pred[truth == c] == c).mean()), 3) for c in sorted(set(truth))}}


def measure(catalogue: Gallery, demo: Gallery, extractor: FeatureExtractor, folders: dict[str, str],
            seed: int = 0) -> dict[str, Any]:
    """Each classifier folder's colour accuracy on the catalogue test shots as shot and pasted on demo floors."""
    _, test = split(catalogue, TEST_FRACTIONS["catalogue"], seed)
    truth = np.asarray(catalogue.colours[test]).astype(str)
    shots = [catalogue.image(int(i)).convert("RGB") for i in test]
    busy = [paste_on(s, f) for s, f in zip(shots, floors(demo, len(shots), seed))]
    busy_x = extractor.embed_images(busy, progress=True)
    out: dict[str, Any] = {"catalogue test shots": len(test)}
    for name, folder in folders.items():
        clfs = ClassifierSet.load(folder)
        out[name] = {"as shot": colour_accuracy(clfs, catalogue.embeddings[test], shots, truth),
                     "pasted on demo floors": colour_accuracy(clfs, busy_x, busy, truth)}
        print(name, json.dumps({k: v["accuracy"] for k, v in out[name].items()}), flush=True)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalogue", required=True, help="gallery of catalogue-dev (build_index.py, the demo's backbone)")
    p.add_argument("--demo", default="demo/gallery", help="the photos whose corners are the floors")
    p.add_argument("--classifiers", nargs="+", required=True, metavar="NAME=FOLDER",
                   help="classifier folders to compare, each with an attribute colour model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    folders = dict(c.split("=", 1) for c in args.classifiers if "=" in c)
    if len(folders) != len(args.classifiers):
        p.error("--classifiers takes NAME=FOLDER pairs")
    t0 = time.time()
    catalogue, demo = Gallery.load(args.catalogue), Gallery.load(args.demo)
    extractor = FeatureExtractor(catalogue.spec.model, device="cpu")
    report = {"command": "python -m benchmarks.busy_backgrounds " + shlex.join(argv if argv is not None else sys.argv[1:]),
              **measure(catalogue, demo, extractor, folders, args.seed), "seconds": round(time.time() - t0)}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
