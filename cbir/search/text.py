"""Queries by words: text embeddings, image + text composition and search by text on CLIP/SigLIP backbones; on any
other gallery with attribute models, words naming a type and colour rank it by those probabilities (cbir.search.words)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from cbir.gallery.labels import TASKS
from cbir.index import l2_normalize
from cbir.search.answer import answer_json
from cbir.search.options import SearchOptions
from cbir.search.words import parse

TEXT_WEIGHT = 1.0  # composed query: unit image vector + TEXT_WEIGHT x unit text vector (equal say for both)
TEXT_CACHE_SIZE = 256  # text embeddings cached per query string (LRU)
MAX_TEXT_CHARS = 300


class TextQueries:
    """SearchEngine's text side; needs `extractor`, `classifiers`, `index`, `_text_vector` (an LRU over
    `_embed_text`), `options`, `_rank` and `search_vector`."""

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

    @property
    def word_classes(self) -> dict[str, list[str]]:
        """{task: classes} the attribute models know: what words can name on a gallery without a text encoder."""
        c = self.classifiers
        return {t: list(c.get("attribute", t).classes) for t in TASKS if c is not None and ("attribute", t) in c}

    @property
    def supports_words(self) -> bool:
        """Whether words can search this gallery: by a text encoder, or by its attribute models' vocabulary."""
        return self.supports_text or bool(self.word_classes)

    def search_text(self, text: str, k: Optional[int] = None, **fields: Any) -> list:
        """Search by words: the gallery images most cosine-similar to the text's embedding, or without a text encoder
        `search_words` (`k` and `fields`: SearchOptions for search_vector)."""
        sized = {} if k is None else {"k": k}
        if not self.supports_text and self.word_classes:
            return self.search_words(text, **sized, **fields)[0]
        return self.search_vector(self.text_vector(text), "cosine", "type", **sized, **fields)

    def words(self, text: str) -> dict[str, str]:
        """{task: class} a description names in the attribute models' vocabulary; a clear ValueError otherwise."""
        t = " ".join(str(text or "").split())
        if not t:
            raise ValueError("Type a garment type or colour, e.g. 'black sneakers'.")
        if len(t) > MAX_TEXT_CHARS:
            raise ValueError(f"The description is {len(t)} characters long; the limit is {MAX_TEXT_CHARS}.")
        return parse(t, self.word_classes)

    def word_scores(self, words: dict[str, str]) -> np.ndarray:
        """(N,) the gallery's probability of every named class (type x colour when both are named), from the
        attribute models (each task's (N, C) probabilities computed once per gallery version)."""
        score = np.ones(len(self.index.vectors), dtype=np.float32)
        for task, value in words.items():
            clf = self.classifiers.get("attribute", task)
            probs = self.index.derived(("attribute-probabilities", task),
                                       lambda v, c=clf: c.probabilities(v, self.index.descriptors))
            score *= probs[:, list(clf.classes).index(value)]
        return score

    def search_words(self, text: str, **fields: Any) -> tuple[list, dict[str, str]]:
        """The gallery ranked by the probabilities of the type and colour `text` names (no text encoder needed):
        (hits, {task: class}); SearchOptions `fields` (or `options=`) as search_vector; the method is "attribute"."""
        hits, words, _ = self._search_words(text, fields.pop("options", None), **fields)
        return hits, words

    def _search_words(self, text: str, options: Optional[SearchOptions], **fields: Any) -> tuple[list, dict, SearchOptions]:
        words = self.words(text)
        o = self.options(SearchOptions.of(options, **fields).replace(method=None))
        o = o.replace(method="attribute" if "attribute" in self.available_methods() else o.method)
        return self._rank(None, o, o.excludes(1)[0], self.dedup_threshold, None, self.word_scores(words),
                          in_process=True), words, o

    def text_answer(self, text: str, options: Optional[SearchOptions] = None, **fields: Any) -> dict[str, Any]:
        """/search_text's answer in /search's shape plus the normalised `text` (and, without a text encoder, the
        `words` understood: {task: class}); `query` is {}: no photo, nothing predicted."""
        t = " ".join(str(text or "").split())
        if self.supports_text or not self.word_classes:
            o = self.options(SearchOptions.of(options, **fields).replace(method="cosine", task="type"))
            return answer_json(self.search_vector(self.text_vector(t), options=o), o, query={}, text=t)
        hits, words, o = self._search_words(t, options, **fields)
        return answer_json(hits, o, query={}, text=t, words=words)
