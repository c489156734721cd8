"""Attribute filters: {label column: allowed values} -> a boolean mask over gallery rows, applied before top-k."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

Filters = Mapping[str, Sequence[str]]


def normalise_filters(filters: Optional[Filters]) -> dict[str, tuple[str, ...]]:
    """Drop columns with no values (empty = no filter) and make the values a sorted tuple of strings."""
    out: dict[str, tuple[str, ...]] = {}
    for column, values in (filters or {}).items():
        if isinstance(values, str):
            values = [values]
        vals = tuple(sorted({str(v) for v in values or () if str(v) != ""}))
        if vals:
            out[str(column)] = vals
    return out


def label_mask(columns: Mapping[str, np.ndarray], filters: Optional[Filters]) -> Optional[np.ndarray]:
    """(N,) bool: rows whose value is allowed in every filtered column; None when nothing is filtered.

    A column the gallery does not have is a clear error naming the columns it has.
    """
    wanted = normalise_filters(filters)
    if not wanted:
        return None
    mask: Optional[np.ndarray] = None
    for column, values in wanted.items():
        if column not in columns:
            raise ValueError(f"cannot filter on {column!r}: the gallery has label columns {sorted(columns)}")
        col = np.asarray(columns[column]).astype(str)
        m = np.isin(col, np.asarray(values, dtype=str))
        mask = m if mask is None else mask & m
    return mask


def available_values(columns: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
    """{column: sorted distinct values} for the columns that have any (empty and missing values skipped)."""
    out = {}
    for column, col in columns.items():
        vals = sorted({str(v) for v in col if v is not None and str(v) not in ("", "None")})
        if vals:
            out[str(column)] = vals
    return out


def check_values(columns: Mapping[str, np.ndarray], filters: Optional[Filters]) -> None:
    """Raise ValueError naming the values a column has when a filter asks for one it does not have."""
    have = available_values(columns)
    for column, values in normalise_filters(filters).items():
        if column in columns and column not in have:
            raise ValueError(f"this gallery has no {column} labels, so it cannot be filtered by {column}")
        unknown = [v for v in values if column in have and v not in have[column]]
        if unknown:
            raise ValueError(f"no {column} {', '.join(map(repr, unknown))} in this gallery; it has: {', '.join(have[column])}")
