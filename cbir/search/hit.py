"""One search result, the value every store and the answer share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Hit:
    """One result: gallery row, rank (1-based), score, labels and the item's stable `id` (Gallery.ids)."""

    rank: int
    index: int
    score: float
    label: str
    colour: Optional[str]  # None when the gallery's labels give no colour (e.g. the CC0 demo)
    type: Optional[str]
    copies: int = 1  # gallery items this result stands for when duplicates are collapsed
    id: str = ""  # stable item id: kept through rebuilds, add and remove, whichever store serves the search
    metadata: dict[str, Any] = field(default_factory=dict)  # the item's manifest columns ({} when none)
    predicted: dict[str, float] = field(default_factory=dict)  # {task: probability} where type/colour is predicted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
