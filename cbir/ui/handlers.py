"""Request handlers bound to one engine: argument checks, then `cbir.search.engine.SearchEngine`; the UI events and
the API endpoints share them."""

from __future__ import annotations

import atexit
import hashlib
import math
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from gradio.data_classes import FileData
from PIL import Image

from cbir.gallery.live import AdminTokenError, LiveGallery, check_token
from cbir.images import load_image
from cbir.search.crop import crop_to_box, parse_box
from cbir.search.answer import answer_json
from cbir.search.engine import MAX_BATCH, SearchEngine
from cbir.search.hit import Hit
from cbir.search.options import SearchOptions
from cbir.search.query import Query
from cbir.search.words import phrase
from cbir.ui.plots import gallery_map, pca_2d, score_histogram
from cbir.similarity.registry import TASK_CHOICES, resolve_method
from cbir.ui.errors import decode, internal_error, upload_path, user_error

K_MAX_UI = 50
K_DEFAULT = 10
MAX_ALTERNATIVES = 3  # runner-up types the guess line offers as one-click filters
MIN_ALTERNATIVE = 0.05  # a runner-up below this probability is not offered (a 1-in-20 chance is worth a click)
TASK_ALIASES = {"color": "colour"}
BROWSER_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})  # served as stored; others become PNG


def fingerprint(image: Image.Image) -> str:
    return hashlib.sha1(repr(image.size).encode() + image.tobytes()).hexdigest()


def similarity_text(score: float) -> str:
    """A score as a person reads it: a percentage for scores in [0, 1] (cosine, the learned methods), else the value."""
    return f"{score:.1%} similar" if 0.0 <= score <= 1.0 else f"score {score:.3f}"


def caption(h: Hit, with_id: bool = False) -> str:
    """A result's caption: its manifest `title` when it has one, its label (else its predicted type), the score
    (`· ×n` for collapsed copies; with `with_id` the stable id and the row, which removal takes)."""
    title = h.metadata.get("title")
    name = h.label or " ".join(v for v in (h.colour, h.type) if v) or "unlabelled"
    head = f"{title} · {name}" if title not in (None, "") else name
    text = f"{head} · {similarity_text(h.score)}" + (f" · ×{h.copies}" if h.copies > 1 else "")
    return text + (f" · {h.id} #{h.index}" if with_id else "")


def guess(query: dict) -> tuple[str, list[str]]:
    """The guess line for an answer's `query` (the photo's predicted type and colour) and the runner-up types to
    offer as filters: ("Looks like **a skirt** (62 %), blue (80 %). Not a skirt?", ["dress", "longsleeve"])."""
    t, c = query.get("type"), query.get("colour")
    if not t:
        return "", []
    text = f"Looks like **{phrase(t['value'])}** ({t['probability']:.0%})"
    if c:
        text += f", **{c['value']}** ({c['probability']:.0%})"
    ranked = sorted(t.get("probabilities", {}).items(), key=lambda kv: -kv[1])
    alternatives = [v for v, p in ranked if v != t["value"] and p >= MIN_ALTERNATIVE][:MAX_ALTERNATIVES]
    return text + (f". Not {phrase(t['value'])}?" if alternatives else "."), alternatives


def marks_text(marks: dict) -> str:
    pos, neg = marks.get("positives", []), marks.get("negatives", [])
    if not pos and not neg:
        return "No feedback yet: select a result, then mark it **More like this** or **Less like this**."
    fmt = lambda xs: ", ".join(f"#{i}" for i in xs) or "none"  # noqa: E731
    return f"More like: {fmt(pos)} · Less like: {fmt(neg)}. **Search** again to use them."


NO_MARKS = {"positives": [], "negatives": []}
TABLE_COLUMNS = ["rank", "label", "score", "copies"]


class Handlers:
    """Request handlers bound to one engine; the UI events and the API endpoints share them."""

    def __init__(self, engine: SearchEngine, live: Optional[LiveGallery] = None, token: Optional[str] = None) -> None:
        self.engine = engine
        self.live = live
        self.token = token
        self.methods = engine.available_methods()
        self._image_dir = Path(tempfile.mkdtemp(prefix="cbir-app-"))
        atexit.register(shutil.rmtree, self._image_dir, ignore_errors=True)
        self._files: dict[str, str] = {}

    # -- argument checks --------------------------------------------------------------------
    def method(self, value: Any) -> str:
        try:
            return resolve_method(value, self.methods)
        except ValueError as e:
            raise user_error(e) from None

    @staticmethod
    def task(value: Any) -> str:
        t = str(value or "").strip().lower()
        t = TASK_ALIASES.get(t, t)
        if t not in TASK_CHOICES:
            raise user_error(f"task must be one of {', '.join(TASK_CHOICES)}; got {value!r}.")
        return t

    @staticmethod
    def integer(value: Any, name: str) -> int:
        try:
            f = float(value)
            if f != int(f):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise user_error(f"{name} must be a whole number; got {value!r}.") from None
        return int(f)

    @staticmethod
    def values(value: Any, name: str) -> list[str]:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise user_error(f"{name} must be a list of label values; got {value!r}.")
        return [str(v) for v in value]

    @staticmethod
    def number(value: Any, name: str) -> Optional[float]:
        """A finite number, or None for an empty value."""
        if value is None or value == "":
            return None
        try:
            f = float(value)
        except (TypeError, ValueError, OverflowError):
            f = math.nan
        if isinstance(value, bool) or not math.isfinite(f):
            raise user_error(f"{name} must be a number (or empty); got {value!r}.")
        return f

    def options(
        self, method: Any = None, task: Any = "type", k: Any = K_DEFAULT, types: Any = None, colours: Any = None,
        dedup: Any = True, min_score: Any = None, exclude: Any = -1,
    ) -> SearchOptions:
        """The request's raw options checked (each bad one a clear user error) into a SearchOptions."""
        if not isinstance(dedup, bool):
            raise user_error(f"dedup must be true or false; got {dedup!r}.")
        ex = [self.exclusion(self.integer(e, "exclude")) for e in exclude] if isinstance(exclude, (list, tuple)) \
            else self.exclusion(self.integer(exclude, "exclude"))
        try:
            return self.engine.options(
                method=None if method is None else self.method(method), task=self.task(task), k=self.integer(k, "k"), dedup=dedup,
                filters={"type": self.values(types, "types"), "colour": self.values(colours, "colours")},
                min_score=self.number(min_score, "min_score"), exclude=tuple(ex) if isinstance(ex, list) else ex,
            )
        except ValueError as e:
            raise user_error(e) from None

    def exclusion(self, exclude: int) -> int:
        n = len(self.engine.gallery)
        if not -1 <= exclude < n:
            raise user_error(f"exclude must be -1 or a gallery index 0..{n - 1}; got {exclude}.")
        return exclude

    # -- gallery images ---------------------------------------------------------------------
    def image_file(self, i: int) -> str:
        """Gallery image i as a file, written once per content: its original bytes when browsers show that
        format, else PNG."""
        key = str(self.engine.gallery.hashes[i])
        if key in self._files:
            return self._files[key]
        data, suffix = self.engine.gallery.image_bytes(i, BROWSER_FORMATS)
        path = self._image_dir / f"gallery-{hashlib.sha1(key.encode()).hexdigest()[:16]}{suffix}"
        with tempfile.NamedTemporaryFile(dir=self._image_dir, suffix=".part", delete=False) as f:
            f.write(data)
        os.replace(f.name, path)
        self._files[key] = str(path)
        return str(path)

    def _save(self, image: Image.Image, prefix: str) -> str:
        with tempfile.NamedTemporaryFile(dir=self._image_dir, prefix=prefix, suffix=".png", delete=False) as f:
            image.save(f, format="PNG")
        return f.name

    # -- core -------------------------------------------------------------------------------
    def query(self, images: list[Any], options: SearchOptions, **parts: Any) -> Query:
        """`SearchEngine.query` for these photos (or words alone) and options; its errors are user errors."""
        try:
            return self.engine.query(images, method=options.method, task=options.task, **parts)
        except ValueError as e:  # ImageError is a ValueError
            raise user_error(e) from None

    def run(self, query: Query, options: SearchOptions, with_scores: bool = False) -> tuple[list[list[Hit]], Any]:
        """A built query's hit lists, and with `with_scores` the gallery's (Q, N) scores (for the UI's plots)."""
        try:
            scores = self.engine.score_matrix(query.vectors, options.method, options.task, query.descriptors) \
                if with_scores else None
            return self.engine.search_query(query, options, scores), scores
        except ValueError as e:
            raise user_error(e) from None
        except Exception:
            raise internal_error("searching") from None

    def search(
        self, image: Image.Image, options: SearchOptions, *, box: Any = None, positives: Any = None,
        negatives: Any = None, text: Any = None, with_scores: bool = False,
    ) -> tuple[list[Hit], dict, Any]:
        """One image's hits and /search answer, and its query (vector, descriptor, and with `with_scores` the
        gallery's (N,) scores, computed once for the hits and the UI's plots)."""
        parts = dict(positives=positives, negatives=negatives)
        q = self.query([image], options, boxes=[box], text=text, **parts)
        hit_lists, scores = self.run(q, options, with_scores)
        result = answer_json(hit_lists[0], options, exclude=options.excludes(1)[0], query=q.predictions[0],
                             box=q.boxes[0], **parts)
        return hit_lists[0], result, (q.vectors[0], None if q.descriptors is None else q.descriptors[0],
                                      None if scores is None else scores[0])

    def search_batch(self, images: Any, options: SearchOptions, *, boxes: Any = None, **parts: Any) -> list[dict]:
        """One /search answer per uploaded photo: the batch scores the gallery as one (Q, N) matrix."""
        images = [] if images is None else [images] if isinstance(images, (dict, FileData)) else list(images)
        n = len(images)
        if not 1 <= n <= MAX_BATCH:
            raise user_error(f"Send between 1 and {MAX_BATCH} photos per call; got {n}.")
        bx = list(boxes) if boxes else [None] * n
        try:
            ex = options.excludes(n)
        except ValueError:
            ex = []
        if len(ex) != n or len(bx) != n:
            raise user_error(f"exclude and boxes take one per photo ({n}), or none; got {len(options.exclude)} and "
                             f"{len(bx)}.")
        photos = []
        for i, payload in enumerate(images):
            try:
                photos.append(load_image(upload_path(payload)))
            except ValueError as e:  # ImageError is a ValueError
                raise user_error(f"photo {i + 1}: {e}") from None
        q = self.query(photos, options, boxes=[b or None for b in bx], **parts)
        hit_lists, _ = self.run(q, options)
        return [
            answer_json(hits, options, exclude=e, query=p, box=b, positives=parts.get("positives"),
                        negatives=parts.get("negatives"))
            for hits, e, p, b in zip(hit_lists, ex, q.predictions, q.boxes)
        ]

    def explain(self, image: Image.Image, index: Any, method: Any, task: Any, box: Any = None) -> tuple[str, str, float]:
        m, t, i = self.method(method), self.task(task), self.integer(index, "index")
        try:
            e, score = self.engine.explain(crop_to_box(image, parse_box(box)), i, m, t)
        except ValueError as err:
            raise user_error(err) from None
        except Exception:
            raise internal_error("explaining the match") from None
        return self._save(e.overlay_a, "explain-query-"), self._save(e.overlay_b, "explain-result-"), round(score, 6)

    def search_text(self, text: Any, options: SearchOptions) -> tuple[list[Hit], dict]:
        """Search by words (a CLIP/SigLIP text embedding, else the attribute models' vocabulary), in /search's answer
        shape plus the normalised `text` (`query` is {}: no photo, nothing predicted)."""
        try:
            result = self.engine.text_answer(str(text or ""), options)
        except ValueError as e:
            raise user_error(e) from None
        return [Hit(**r) for r in result["results"]], result

    def compare(self, image_a: Any, image_b: Any, method: Any, task: Any) -> float:
        a, b = decode(image_a), decode(image_b)
        m, t = self.method(method), self.task(task)
        try:
            return round(self.engine.compare(a, b, m, t), 6)
        except ValueError as e:
            raise user_error(e) from None
        except Exception:
            raise internal_error("comparing the images") from None

    def pick(self) -> int:
        return random.randrange(len(self.engine.gallery))

    def plots(self, query, method: str, task: str, hits: list[Hit]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Score histogram and PCA map for one query: (embedding, colour descriptor or None)."""
        vec, descriptor, *row = query  # row: the gallery's scores if the search computed them
        scores = row[0] if row and row[0] is not None else self.engine.scores(vec, method, task, descriptor)
        kth = hits[-1].score if hits else float("inf")
        g = self.engine.gallery
        basis = self.engine.index.derived("pca2", pca_2d)
        return score_histogram(scores, kth), gallery_map(
            self.engine.index.vectors, g.types, vec, [h.index for h in hits], basis=basis
        )

    # -- live gallery -----------------------------------------------------------------------
    def _live(self, token: Any) -> LiveGallery:
        try:
            check_token(token, self.token)
        except AdminTokenError as e:
            raise user_error(e) from None
        if self.live is None:
            raise user_error("This gallery is not a local folder, so it cannot be changed here (the live gallery "
                         "needs --gallery pointing at a folder).")
        return self.live

    def add(self, images: Any, labels: Any, token: Any, metadata: Any = None) -> list[int]:
        live = self._live(token)
        if isinstance(metadata, dict):
            metadata = [metadata]
        if metadata is not None and not isinstance(metadata, (list, tuple)):
            raise user_error(f"metadata must be an object, or a list of one object per image; got {metadata!r}.")
        if isinstance(images, (dict, FileData)) or images is None:
            images = [images] if images is not None else []
        paths = [upload_path(im) for im in images]
        if not paths:
            raise user_error("No images to add: send one or more files with handle_file().")
        try:
            out = live.add(paths, self.values(labels, "labels"), list(metadata or []))
        except ValueError as e:
            raise user_error(e) from None
        return out

    def remove(self, indices: Any, token: Any) -> int:
        """Remove gallery rows given by index (a number, "17" or "#17") or by stable id ("red_dress/003")."""
        live = self._live(token)
        if isinstance(indices, (int, float, str)):
            indices = [v for v in str(indices).replace(",", " ").split()]
        try:
            return live.remove(self.rows(list(indices or [])))
        except ValueError as e:
            raise user_error(e) from None

    def rows(self, values: list[Any]) -> list[Any]:
        """Gallery rows for indices or ids: a number or "#17" is a row, a string an id (digits that are no id are a
        row); an unknown id is a clear error. Other values are left for the index check."""
        ids = {str(i): r for r, i in enumerate(self.engine.gallery.ids)}
        out = []
        for v in values:
            text = str(v).strip() if isinstance(v, str) else None
            if text is None:
                out.append(v)
            elif text.startswith("#") and text[1:].isdigit():
                out.append(int(text[1:]))
            elif text in ids:
                out.append(ids[text])
            elif text.lstrip("-").isdigit():
                out.append(int(text))
            else:
                raise ValueError(f"no gallery image has the id {text!r}: give ids as the result captions show them "
                                 "(e.g. red_dress/003) or indices (#17)")
        return out

    # -- UI events (private) ----------------------------------------------------------------
    def ui_random(self):
        i = self.pick()
        g = self.engine.gallery
        path = self.image_file(i)
        state = {"index": i, "fingerprint": fingerprint(load_image(path))}
        attrs = ", ".join(f"{t} {g.attribute(t)[i]}" for t in ("colour", "type") if g.attribute(t)[i])
        info = f"Gallery image #{i}: **{g.labels[i]}**{f' ({attrs})' if attrs else ''}; it is left out of its own results."
        return path, info, state

    def ui_search(
        self, image, method, task, k, picked, types=None, colours=None, dedup=True, box="", marks=None, text=""
    ):
        marks = marks or NO_MARKS
        exclude = -1
        words = str(text or "").strip()
        if image is None and words:  # words only: a CLIP/SigLIP text embedding, or the attribute models' vocabulary
            hits, result = self.search_text(words, self.options(None, "type", k, types, colours, bool(dedup)))
            vec = (self.engine.text_vector(words), None) if self.engine.supports_text else None
        else:
            img = decode(image)
            if picked and picked.get("fingerprint") == fingerprint(img):
                exclude = int(picked["index"])
            options = self.options(method, task, k, types, colours, bool(dedup), exclude=exclude)
            hits, result, vec = self.search(img, options, box=box, positives=marks["positives"],
                                            negatives=marks["negatives"],
                                            text=text if self.engine.supports_text else None, with_scores=True)
        g = self.engine.gallery
        if exclude >= 0:
            result["query"] = {**result["query"], "index": exclude, "label": str(g.labels[exclude])}
        items = [(self.image_file(h.index), caption(h, with_id=self.live is not None)) for h in hits]
        rows = []
        for h in hits:
            row = {"rank": h.rank, "label": h.label, "score": round(h.score, 4), "copies": h.copies}
            for task in g.tasks if exclude >= 0 else ():  # no colour labels (CC0 demo): no colour-match column
                if g.attribute(task)[exclude]:
                    row[f"{task} match"] = "✓" if getattr(h, task) == g.attribute(task)[exclude] else "✗"
            rows.append(row)
        hist, pca = self.plots(vec, result["method"], result["task"], hits) if vec is not None else (None, None)
        return items, pd.DataFrame(rows, columns=list(rows[0]) if rows else TABLE_COLUMNS), result, hist, pca
