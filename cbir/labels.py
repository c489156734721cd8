"""Labels of the Apparel Images Dataset: folder names `colour_type` -> (colour, type)."""

from __future__ import annotations

from dataclasses import dataclass

COLOURS: tuple[str, ...] = ("black", "blue", "brown", "green", "red", "white")
TYPES: tuple[str, ...] = ("dress", "pants", "shirt", "shoes", "shorts")
TASKS: tuple[str, ...] = ("type", "colour")


class LabelError(ValueError):
    """A folder name that is not `colour_type` with a known colour and garment type."""


@dataclass(frozen=True)
class Label:
    """One class of the gallery, e.g. Label("black", "dress") for folder `black_dress`."""

    colour: str
    type: str

    @property
    def name(self) -> str:
        return f"{self.colour}_{self.type}"

    def attribute(self, task: str) -> str:
        """The value this label has for a task (`type` or `colour`)."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        return self.type if task == "type" else self.colour


def parse_label(folder: str) -> Label:
    """Parse a class folder name such as `blue_shoes`; raise LabelError naming the folder otherwise."""
    parts = folder.strip().lower().split("_")
    if len(parts) != 2 or not all(parts):
        raise LabelError(
            f"folder {folder!r} is not named colour_type (e.g. 'black_dress'); "
            f"colours: {', '.join(COLOURS)}; types: {', '.join(TYPES)}"
        )
    colour, garment = parts
    if colour not in COLOURS:
        raise LabelError(f"folder {folder!r}: unknown colour {colour!r}; expected one of {', '.join(COLOURS)}")
    if garment not in TYPES:
        raise LabelError(f"folder {folder!r}: unknown garment type {garment!r}; expected one of {', '.join(TYPES)}")
    return Label(colour, garment)
