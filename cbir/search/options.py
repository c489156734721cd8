"""How to search, as one keyword-only value: what the UI, the API and the engine pass instead of long argument lists."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from cbir.core.filters import Filters


def _filter_lists(filters: Optional[Filters]) -> dict[str, list[str]]:
    """{column: [values]} with empty columns dropped and a bare string taken as one value (the order kept)."""
    out = {}
    for column, values in (filters or {}).items():
        vals = [values] if isinstance(values, str) else [str(v) for v in values or ()]
        if vals:
            out[str(column)] = vals
    return out


@dataclass(frozen=True, kw_only=True)
class SearchOptions:
    """The options of one search: `method` None = the engine's default; `exclude` one gallery row (-1 = none) or,
    for a batch, one per query; `filters` {column: values} mask rows before top-k; `min_score` cuts weak hits."""

    method: Optional[str] = None
    task: str = "type"
    k: int = 10
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    dedup: bool = False
    min_score: Optional[float] = None
    exclude: int | tuple[int, ...] = -1

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", _filter_lists(self.filters))
        if not isinstance(self.exclude, int):
            object.__setattr__(self, "exclude", tuple(int(e) for e in self.exclude))

    @classmethod
    def of(cls, options: Optional[SearchOptions] = None, **fields: Any) -> SearchOptions:
        """`options` (default: the defaults) with `fields` changed; a None method or task keeps the base's."""
        base = options or cls()
        changes = {f: v for f, v in fields.items() if not (v is None and f in ("method", "task"))}
        unknown = set(changes) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown search options {sorted(unknown)}")
        return dataclasses.replace(base, **changes) if changes else base

    def replace(self, **fields: Any) -> SearchOptions:
        return dataclasses.replace(self, **fields)

    def excludes(self, n: int) -> list[int]:
        """One gallery row to leave out per query (-1 = none) for a batch of `n`; a clear error for a wrong count."""
        ex = [self.exclude] * n if isinstance(self.exclude, int) else list(self.exclude)
        if not ex and n:
            ex = [-1] * n
        if len(ex) != n:
            raise ValueError(f"exclude must give one gallery index (or -1) per query: {n}, got {len(ex)}")
        return ex
