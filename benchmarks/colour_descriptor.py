#!/usr/bin/env python
"""Which colour descriptor recipe makes the best colour classifier, judged on validation images only.

The Apparel gallery's training split (train_classifiers.py's, seed 0) is split again 80 / 20 as tune_hybrid.py
splits it; for each recipe the descriptors of those images are computed, an attribute colour classifier
(embedding + descriptor, the library's estimator) is fitted on the 80 % and judged on the 20 %: colour pair
Pearson (4,000 balanced pairs, Bhattacharyya score as the app has it) and top-class accuracy. Test images are
never read.

    python -m benchmarks.colour_descriptor --gallery /tmp/q18/apparel-gallery --out results/colour-descriptor.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.embed.colour import ColourSpec, colour_descriptor  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.images import load_image  # noqa: E402
from cbir.similarity.attributes import AttributeClassifier  # noqa: E402
from cbir.similarity.evaluation import correlations  # noqa: E402
from cbir.similarity.pairs import sample_pairs, split_images, validation_split  # noqa: E402


def shades_of_grey(image: Any, p: float = 6.0) -> Image.Image:
    """Colour constancy (Finlayson and Trezzi 2004): divide each channel by its Minkowski p-mean."""
    rgb = np.asarray(load_image(image), dtype=np.float32)
    ill = np.power(np.mean(np.power(rgb.reshape(-1, 3) + 1e-3, p), axis=0), 1.0 / p)
    return Image.fromarray(np.clip(rgb / (ill / ill.mean()), 0, 255).astype(np.uint8))


RECIPES: dict[str, tuple[ColourSpec, bool]] = {  # name: (descriptor recipe, shades-of-grey first)
    "8x3x3 (before 2026-12-05)": (ColourSpec(bins=(8, 3, 3)), False),
    "8x3x3 + shades-of-grey": (ColourSpec(bins=(8, 3, 3)), True),
    "12x4x4": (ColourSpec(bins=(12, 4, 4)), False),
    "16x4x4": (ColourSpec(bins=(16, 4, 4)), False),
    "16x4x4 + shades-of-grey": (ColourSpec(bins=(16, 4, 4)), True),
    "16x4x4, 96 px": (ColourSpec(bins=(16, 4, 4), size=96), False),
    "16x4x4, crop 0.9": (ColourSpec(bins=(16, 4, 4), crop=0.9), False),
    "24x4x4": (ColourSpec(bins=(24, 4, 4)), False),
    "16x6x6 (the default)": (ColourSpec(bins=(16, 6, 6)), False),
    "24x6x6": (ColourSpec(bins=(24, 6, 6)), False),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gallery", required=True, help="the Apparel gallery (build_index.py)")
    p.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/colour-descriptor.json")
    args = p.parse_args(argv)
    g = Gallery.load(args.gallery)
    train = split_images(g.labels, g.hashes, seed=args.seed).train  # train_classifiers.py's split
    fit, val = validation_split(g.labels, g.hashes, train, 0.2, args.seed)
    colours = np.asarray(g.attribute("colour")).astype(str)
    pairs = sample_pairs(colours, val, args.pairs, np.random.default_rng(args.seed))
    rows_used = np.sort(np.concatenate([fit, val]))
    rows = []
    for name in args.recipes:
        spec, constancy = RECIPES[name]
        t = time.time()
        d = np.zeros((len(g), spec.dim), np.float32)
        for i in rows_used:
            img = g.image(int(i))
            d[i] = colour_descriptor(shades_of_grey(img) if constancy else img, spec)
        clf = AttributeClassifier.fit("attribute", "colour", g.embeddings, colours, fit, g.spec, d, spec.to_dict(), args.seed)
        prob = clf.probabilities(g.embeddings[val], d[val])
        pair = clf.score_pairs(g.embeddings[pairs.left], g.embeddings[pairs.right], (d[pairs.left], d[pairs.right]))
        row = {"recipe": name, "dim": spec.dim, "spec": spec.to_dict(), "constancy": "shades-of-grey p=6" if constancy else None,
               "pearson": round(correlations(pair, pairs.label)["pearson"], 4),
               "accuracy": round(float((np.asarray(clf.classes)[prob.argmax(1)] == colours[val]).mean()), 4),
               "seconds": round(time.time() - t, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"command": "python -m benchmarks.colour_descriptor " + " ".join(argv if argv is not None else sys.argv[1:]),
           "fit_images": int(len(fit)), "validation_images": int(len(val)), "pairs": int(len(pairs)), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
