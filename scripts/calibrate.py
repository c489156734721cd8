#!/usr/bin/env python
"""Calibrate the served type and colour models and choose the hedge's settings, on validation photos only (issue 38).

The served recipes are refitted on the fit parts of cbir.train.splits' split (catalogue shots grouped by product),
a temperature per task is fitted by the validation photos' NLL, and the hedge's settings are chosen on the validation
query sets (cbir.train.calibration.HEDGE_RULE); both are written into the folder's attribute-<task>.json cards:

    python scripts/calibrate.py --classifiers demo/classifiers --demo demo/gallery \\
        --cc0-train /tmp/src/cc0-train --catalogue /tmp/src/catalogue --apparel /tmp/src/apparel --out results/calibration.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.train.calibration import calibrate, load_sources, source_arguments  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source_arguments(p)
    p.add_argument("--out", help="write the validation report (ECE before/after, the hedge grid) here")
    args = p.parse_args(argv)
    report = calibrate(load_sources(args), args.classifiers)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
