#!/usr/bin/env python
"""Add colour descriptors (cbir.embed.colour) to a gallery built without them; writes a new gallery folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.embed.colour import WEIGHTINGS, ColourSpec  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.cli import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", required=True, help="gallery folder or Hub dataset id")
    p.add_argument("--out", required=True, help="output gallery folder (must differ from the input)")
    p.add_argument("--weighting", default=ColourSpec.weighting, choices=list(WEIGHTINGS), help="pixel weighting")
    args = p.parse_args(argv)
    if Path(args.out).resolve() == Path(args.gallery).resolve():
        raise SystemExit("--out must be a new folder, not the input gallery")
    gallery = Gallery.load(args.gallery).with_colour(ColourSpec(weighting=args.weighting))
    gallery.save(args.out)
    print(f"wrote {args.out}: {len(gallery)} images, colour descriptor {gallery.colour_spec.to_dict()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
