"""A query built once: photos (each cropped to its box) embedded in one pass, nudged by words, refined by feedback,
with the colour descriptors the method or the prediction reads and each photo's predicted type and colour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from cbir.images import ImageError, load_image
from cbir.search.crop import crop_to_box, parse_box
from cbir.search.prediction import Prediction, needs_descriptor


@dataclass(frozen=True)
class Query:
    """What one request scores: (Q, D) `vectors` (photo, words and feedback applied), their (Q, C) colour
    `descriptors` (None when nothing reads them), each photo's `predictions` (of the photo itself, before words and
    feedback; {} for words alone) and the parsed crop `boxes`."""

    vectors: np.ndarray
    descriptors: Optional[np.ndarray]
    predictions: list[Prediction]
    boxes: list[Optional[list[float]]]


class QueryBuilder:
    """SearchEngine's query side; needs `embed_batch`, `describe`, `predict`, `compose`, `text_vector`, `refine`,
    `needs_descriptor` and `classifiers`."""

    def query(
        self,
        images: Sequence[Any] = (),
        *,
        boxes: Optional[Sequence[Any]] = None,
        text: Optional[str] = None,
        positives: Optional[Sequence[int]] = None,
        negatives: Optional[Sequence[int]] = None,
        method: str = "cosine",
        task: str = "type",
        predict: bool = True,
    ) -> Query:
        """The query of 1+ photos (path, bytes, PIL or array; `boxes` one per photo or none) or of `text` alone.

        A photo that cannot be used raises ImageError ("photo 2: ..." in a batch); words need a text encoder."""
        words = str(text or "").strip()
        if not images:
            if not words:
                raise ValueError("Give a photo, or words describing the garment.")
            vectors = np.asarray(self.text_vector(words), dtype=np.float32)[None]
            return self._refined(Query(vectors, None, [{}], [None]), positives, negatives)
        bx = [parse_box(b) for b in boxes] if boxes else [None] * len(images)
        if len(bx) != len(images):
            raise ValueError(f"boxes take one per photo ({len(images)}), or none; got {len(bx)}")
        crops = [self._photo(im, b, i if len(images) > 1 else None) for i, (im, b) in enumerate(zip(images, bx))]
        vectors = np.atleast_2d(self.embed_batch(crops))
        read = self.needs_descriptor(method, task) or (predict and needs_descriptor(self.classifiers))
        d = np.stack([self.describe(c) for c in crops]) if read and self.gallery.colour_spec is not None else None
        predictions = [self.predict(v, None if d is None else d[i]) for i, v in enumerate(vectors)] if predict else []
        if words:
            vectors = self.compose(vectors, words)
        d = d if self.needs_descriptor(method, task) else None
        return self._refined(Query(vectors, d, predictions, bx), positives, negatives)

    @staticmethod
    def _photo(image: Any, box: Optional[list[float]], position: Optional[int]) -> Any:
        try:
            return crop_to_box(load_image(image), box)
        except ImageError as e:
            raise ImageError(str(e) if position is None else f"photo {position + 1}: {e}") from None

    def _refined(self, q: Query, positives: Optional[Sequence[int]], negatives: Optional[Sequence[int]]) -> Query:
        """Relevance feedback on every row (one Rocchio step)."""
        if not positives and not negatives:
            return q
        vectors = np.stack([self.refine(v, positives, negatives) for v in q.vectors])
        return Query(vectors, q.descriptors, q.predictions, q.boxes)
