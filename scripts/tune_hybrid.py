#!/usr/bin/env python
"""Choose the hybrid method's weights per task on validation data only (cbir.train.hybrid): the training images of
a trained gallery are split again (fit / validation), attribute classifiers and the learned whitening refitted on
the fit part, and each weight quadruple (class, cosine, colour, instance) judged on the validation part. The held-out
test images are never touched. --into writes the chosen weights into a classifier folder's manifest, where the
search reads them (a folder without them keeps the built-in defaults)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.cli import run  # noqa: E402
from cbir.train.hybrid import TuneOptions, tune, write_weights  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", required=True)
    p.add_argument("--classifiers", default=None, help="a trained classifier folder (its pairs.npz gives the split); "
                   "default: the split train_classifiers.py makes with --test-fraction and --seed")
    p.add_argument("--into", default=None, help="classifier folder whose manifest gets the chosen weights "
                   "(settings.hybrid_weights), e.g. demo/classifiers")
    p.add_argument("--out", default="results/hybrid-tuning.json", help="the full report (grid and rule)")
    defaults = TuneOptions()
    for f in fields(TuneOptions):
        value = getattr(defaults, f.name)
        kw = {"nargs": len(value), "type": float} if isinstance(value, tuple) else {"type": type(value)}
        p.add_argument("--" + f.name.replace("_", "-"), default=value, **kw)
    args = p.parse_args(argv)
    options = TuneOptions(**{f.name: (tuple(v) if isinstance(v := getattr(args, f.name), list) else v)
                             for f in fields(TuneOptions)})
    report = tune(args.gallery, args.classifiers, options)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.into:
        print(f"wrote {args.into}: hybrid weights {json.dumps(write_weights(args.into, report['chosen']))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
