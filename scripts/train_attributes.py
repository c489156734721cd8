#!/usr/bin/env python
"""Train the demo's attribute models (type and colour) on several photo sources, chosen on validation and scored
once on held-out photos of each source (cbir.train.attributes; `--help` lists the galleries it reads)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.cli import run  # noqa: E402
from cbir.train.attributes import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(run(main))
