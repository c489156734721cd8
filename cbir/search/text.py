"""Queries by words (CLIP/SigLIP backbones): text embeddings, image + text composition, search by text."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from cbir.index import l2_normalize

TEXT_WEIGHT = 1.0  # composed query: unit image vector + TEXT_WEIGHT x unit text vector (equal say for both)
TEXT_CACHE_SIZE = 256  # text embeddings cached per query string (LRU)
MAX_TEXT_CHARS = 300


class TextQueries:
    """SearchEngine's text side; needs `extractor`, `_text_vector` (an LRU over `_embed_text`) and `search_vector`."""

    @property
    def supports_text(self) -> bool:
        """Whether queries can be words (the backbone has a text tower: hf: CLIP/SigLIP)."""
        return self.extractor.has_text

    def _embed_text(self, text: str) -> np.ndarray:
        v = self.extractor.embed_text([text])[0]
        v.setflags(write=False)  # shared by every later query with the same words
        return v

    def text_vector(self, text: str) -> np.ndarray:
        """A description's embedding (cached per string); a clear error when empty, too long or unsupported."""
        t = " ".join(str(text or "").split())
        if not t:
            raise ValueError("Type a description of the garment, e.g. 'red summer dress'.")
        if len(t) > MAX_TEXT_CHARS:
            raise ValueError(f"The description is {len(t)} characters long; the limit is {MAX_TEXT_CHARS}.")
        if not self.supports_text:
            self.extractor.embed_text([t])  # raises the message naming the backbones that can
        return self._text_vector(t)

    def compose(self, image_vector: np.ndarray, text: str, weight: float = TEXT_WEIGHT) -> np.ndarray:
        """Image plus words: unit(image) + weight * unit(text), rescaled to the image vector's length.

        Rescaling leaves cosine unchanged and keeps Euclidean and the learned methods on vectors of the usual size.
        """
        img = np.asarray(image_vector, dtype=np.float32)  # (D,) or (Q, D)
        q = l2_normalize(img) + np.float32(weight) * l2_normalize(self.text_vector(text))
        return l2_normalize(q) * np.linalg.norm(img, axis=-1, keepdims=True)

    def search_text(self, text: str, k: Optional[int] = None, **fields: Any) -> list:
        """Search by words: the gallery images most cosine-similar to the text's embedding (`k` and `fields`:
        SearchOptions for search_vector)."""
        sized = {} if k is None else {"k": k}
        return self.search_vector(self.text_vector(text), "cosine", "type", **sized, **fields)
