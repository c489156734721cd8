"""Shared entry-point wrapper for the scripts: user errors print one clear line, not a traceback."""

from __future__ import annotations

import sys
from typing import Callable

from cbir.embed.spec import BackboneMismatchError

from cbir.embed.extractor import WeightsUnavailableError
from cbir.hub import HubUnavailableError
from cbir.images import ImageError
from cbir.gallery.labels import LabelError

USER_ERRORS = (
    LabelError, ImageError, WeightsUnavailableError, BackboneMismatchError, HubUnavailableError, FileNotFoundError,
    ValueError,
)


def run(main: Callable[[], int]) -> int:
    """Call a script's main(); known user errors exit with status 2 and `error: <message>` on stderr."""
    try:
        return main()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
