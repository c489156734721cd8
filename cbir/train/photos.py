"""Labelled photos of a class-folder tree without embeddings: what the backbone's adaptation reads (no gallery of a
backbone that is about to change is needed), with the labels and content hashes the splits use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from cbir.gallery.dataset import ImageRecord, scan_image_folder
from cbir.images import load_image


@dataclass(frozen=True)
class PhotoSet:
    """The photos of a folder tree in the order a gallery built from it has them (labels, types, colours, hashes)."""

    records: Sequence[ImageRecord]

    @classmethod
    def scan(cls, folder: str | os.PathLike) -> "PhotoSet":
        return cls(tuple(scan_image_folder(folder)))

    def __len__(self) -> int:
        return len(self.records)

    @cached_property
    def labels(self) -> np.ndarray:
        return np.asarray([r.label.name for r in self.records], dtype=object)

    @cached_property
    def hashes(self) -> np.ndarray:
        return np.asarray([r.sha1 for r in self.records], dtype=object)

    @cached_property
    def types(self) -> np.ndarray:
        return np.asarray([r.label.type for r in self.records], dtype=object)

    @cached_property
    def colours(self) -> np.ndarray:
        return np.asarray([r.label.colour for r in self.records], dtype=object)

    def image(self, i: int):
        return load_image(self.records[i].path)
