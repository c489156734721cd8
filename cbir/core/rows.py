"""Gallery row indices given by a caller (feedback marks, rows to remove), checked once for every package."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def check_indices(indices: Sequence[int] | None, n: int, name: str) -> np.ndarray:
    """Gallery indices as an int array; anything outside 0..n-1 or not whole is a clear ValueError naming `name`."""
    out = []
    for v in indices or ():
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = float("nan")
        if f != f or f != int(f) or not 0 <= int(f) < n:
            raise ValueError(f"{name} must be gallery indices 0..{n - 1}; got {v!r}")
        out.append(int(f))
    return np.asarray(out, dtype=np.int64)
