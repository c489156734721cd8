"""Labels from class folder names: any name is a label; `colour_type` also gives colour and type.

`black_dress` (Apparel Images Dataset layout) -> colour black, type dress; `dress` or `longsleeve` (a known
garment type, the CC0 clothing dataset layout) -> type only; any other name is a label with neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

COLOURS: tuple[str, ...] = ("black", "blue", "brown", "green", "red", "white")
TYPES: tuple[str, ...] = ("dress", "pants", "shirt", "shoes", "shorts")  # the Apparel Images Dataset's types
# Garment types recognised in a folder name on their own (no colour): the Apparel types plus the CC0 set's.
GARMENT_TYPES: tuple[str, ...] = TYPES + ("hat", "longsleeve", "outwear", "skirt", "tshirt")
TASKS: tuple[str, ...] = ("type", "colour")


class LabelError(ValueError):
    """A folder name that cannot be a label (empty, or made only of separators)."""


@dataclass(frozen=True)
class Label:
    """One class of the gallery: Label("black", "dress") for `black_dress`, Label(None, "hat") for `hat`.

    `name` is the folder name (lower case); colour and type are None when the name does not give them.
    """

    colour: Optional[str]
    type: Optional[str]
    name_: Optional[str] = None

    @property
    def name(self) -> str:
        if self.name_:
            return self.name_
        return "_".join(p for p in (self.colour, self.type) if p)

    def attribute(self, task: str) -> Optional[str]:
        """The value this label has for a task (`type` or `colour`), None when unknown."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        return self.type if task == "type" else self.colour


def parse_label(folder: str) -> Label:
    """Label of a class folder: `blue_shoes` -> colour and type, `hat` -> type, anything else -> name only."""
    name = folder.strip().lower()
    if not name.strip("_- ."):
        raise LabelError(f"folder {folder!r} cannot be a label: the name is empty")
    colour, sep, garment = name.partition("_")
    if sep and colour in COLOURS and garment and "_" not in garment:
        return Label(colour, garment)
    if name in GARMENT_TYPES:
        return Label(None, name)
    return Label(None, None, name)
