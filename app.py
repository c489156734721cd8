#!/usr/bin/env python
"""Gradio app: search a clothing gallery by image (content-based image retrieval).

`python app.py` starts on the embedded demo gallery. Everything is loaded once at start-up; the
request handlers below only translate between Gradio and `cbir.search.engine.SearchEngine`.

API (gradio_client): /search, /search_text, /random, /compare, /explain, /add and /remove; see `create_app`.
"""

import argparse
import atexit
import hashlib
import html
import logging
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal, Optional

import gradio as gr
import numpy as np
import pandas as pd
import torch
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal
from PIL import Image

from cbir.search.crop import box_from_corners, crop_to_box, draw_box, parse_box
from cbir.gallery.demo import DEMO_CLASSIFIERS, DEMO_GALLERY
from cbir.embed.spec import BackboneMismatchError
from cbir.embed.extractor import WeightsUnavailableError
from cbir.search.filters import available_values
from cbir.hub import is_local
from cbir.images import ImageError, load_image
from cbir.gallery.live import AdminTokenError, LiveGallery, admin_token, check_token
from cbir.search.plots import QUERY, RESULT, gallery_map, pca_2d, score_histogram
from cbir.embed.runtime import RUNTIME_CHOICES, limit_threads
from cbir.search.engine import Hit, SearchEngine, load_engine
from cbir.similarity.registry import TASK_CHOICES, get_method, resolve_method

log = logging.getLogger("cbir.app")

K_MAX_UI = 50
K_DEFAULT = 10
TASK_ALIASES = {"color": "colour"}
BROWSER_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})  # served as stored; others become PNG
SOURCES = ["upload", "webcam", "clipboard"]
ENGINE_CONCURRENCY = "engine"  # every event that runs the model shares one concurrency group
MAX_FILE_SIZE = "25mb"  # larger uploads are refused by Gradio (client and server) before any handler runs
DEFAULT_CONCURRENCY = 2  # model calls at a time (README, "Soak under load": measured on 2 cores)


# ---------------------------------------------------------------------------------------------
# Start-up: arguments, weights policy, engine
# ---------------------------------------------------------------------------------------------


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(
        description="Content-based image retrieval for clothing photos (Gradio app). "
        "With no options it serves the embedded demo gallery.",
    )
    p.add_argument(
        "--gallery",
        default=env("CBIR_GALLERY") or None,
        help="gallery: local save_to_disk folder or Hub dataset id (env CBIR_GALLERY; default: the embedded demo)",
    )
    p.add_argument(
        "--classifiers",
        default=env("CBIR_CLASSIFIERS") or None,
        help="classifiers: local folder or Hub model id, or 'none' (env CBIR_CLASSIFIERS; default: the demo "
        "classifiers for the demo gallery, else none, which hides the learned methods)",
    )
    p.add_argument(
        "--gallery-revision",
        default=env("CBIR_GALLERY_REVISION") or None,
        help="pin a Hub gallery to a branch, tag or commit (env CBIR_GALLERY_REVISION; default: main)",
    )
    p.add_argument(
        "--classifiers-revision",
        default=env("CBIR_CLASSIFIERS_REVISION") or None,
        help="pin Hub classifiers to a branch, tag or commit (env CBIR_CLASSIFIERS_REVISION; default: main)",
    )
    w = p.add_mutually_exclusive_group()
    w.add_argument(
        "--weights",
        default=None,
        help="local backbone weights file for a gallery embedded with pretrained weights (default: the registered "
        "source of the backbone the gallery names: the pip package for Lite2, the Hub for VGG16)",
    )
    w.add_argument(
        "--random-weights",
        action="store_true",
        help="SMOKE RUN ONLY: embed queries with random-init weights when the gallery was embedded with pretrained "
        "ones (scores are meaningless; a warning banner is shown)",
    )
    p.add_argument(
        "--store",
        default=env("CBIR_STORE") or None,
        help="vector store: numpy (default: exact, in the app process), faiss[:hnsw|ivf|flat], milvus:PATH "
        "(a milvus-lite file, built from the gallery on first start) or milvus://host:port (env CBIR_STORE)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: %(default)s)")
    p.add_argument(
        "--runtime",
        default=env("CBIR_RUNTIME") or "auto",
        choices=RUNTIME_CHOICES,
        help="query forward pass: onnx, torch, or auto (ONNX Runtime for pretrained weights on the CPU) "
        "(env CBIR_RUNTIME; default: %(default)s)",
    )
    p.add_argument(
        "--host",
        default=env("GRADIO_SERVER_NAME") or "127.0.0.1",
        help="address to listen on (env GRADIO_SERVER_NAME; default: %(default)s)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(env("GRADIO_SERVER_PORT") or 7860),
        help="port (env GRADIO_SERVER_PORT; default: %(default)s)",
    )
    p.add_argument("--share", action="store_true", help="create a public gradio.live link (off by default)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=int(env("CBIR_CONCURRENCY") or DEFAULT_CONCURRENCY),
        help="model calls served at a time by the queue (env CBIR_CONCURRENCY; default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=int(env("CBIR_THREADS") or 0) or None,
        help="CPU threads per model call, for torch, ONNX Runtime and OpenVINO (env CBIR_THREADS; default: the "
        "cores divided among the --concurrency calls, so parallel calls do not oversubscribe the CPU)",
    )
    return p.parse_args(argv)


def _is_demo(gallery_arg: Optional[str]) -> bool:
    if gallery_arg is None:
        return True
    try:
        return Path(gallery_arg).resolve() == DEMO_GALLERY.resolve()
    except OSError:
        return False


def build_engine(args: argparse.Namespace) -> SearchEngine:
    """Load gallery, backbone and classifiers once (weights policy: `cbir.search.engine.extractor_for`).

    The demo gallery comes with the demo classifiers; any other gallery has none unless `--classifiers` is given.
    """
    gallery = args.gallery or str(DEMO_GALLERY)
    classifiers = args.classifiers
    if classifiers is None and _is_demo(args.gallery):
        classifiers = str(DEMO_CLASSIFIERS)
    if classifiers and classifiers.lower() == "none":
        classifiers = None
    log.info("loading gallery %s and classifiers %s", gallery, classifiers)
    engine = load_engine(
        gallery, classifiers, args.weights, args.random_weights, args.device, runtime=args.runtime,
        gallery_revision=args.gallery_revision, classifiers_revision=args.classifiers_revision if classifiers else None,
        store=args.store,
    )
    log.info(
        "ready: %d gallery images, backbone %s on %s (runtime %s), methods %s",
        len(engine.gallery), engine.extractor.spec.describe(), engine.extractor.device, engine.extractor.runtime.name,
        ", ".join(engine.available_methods()),
    )
    return engine


def weights_banner(engine: SearchEngine) -> Optional[str]:
    """The warning every page must show when features come from random-init weights, else None."""
    return engine.weights_warning()


# ---------------------------------------------------------------------------------------------
# Request helpers (thin: all retrieval logic is in cbir.search.engine)
# ---------------------------------------------------------------------------------------------


def _error(message: object) -> gr.Error:
    """A message for the user (a library error's text is already written for users); no traceback in the log."""
    log.info("request refused: %s", message)
    return gr.Error(html.escape(str(message), quote=False), print_exception=False)


def _internal_error(action: str) -> gr.Error:
    """An unexpected failure: the traceback goes to the server log, the user gets what to do."""
    log.exception("unexpected error while %s", action)
    return _error(f"The server failed while {action} (the details are in its log): try again, or try another image.")


def _upload_path(payload: Any) -> str:
    """The server-side path of an uploaded image; only files in Gradio's upload folder are accepted."""
    if payload is None:
        raise _error("No image: upload an image (or pick a random gallery image) first.")
    if isinstance(payload, FileData):
        payload = payload.model_dump()
    path = payload.get("path") if isinstance(payload, dict) else None
    if not isinstance(path, str) or not path:
        raise _error("The image must be sent as a file, e.g. gradio_client.handle_file('photo.jpg').")
    if not is_in_or_equal(path, get_upload_folder()):
        raise _error("The image was not uploaded with this request; send it with handle_file().")
    return path


def _decode(payload: Any) -> Image.Image:
    try:
        return load_image(_upload_path(payload))
    except ImageError as e:
        raise _error(e) from None


def _fingerprint(image: Image.Image) -> str:
    return hashlib.sha1(repr(image.size).encode() + image.tobytes()).hexdigest()


def _hits_json(hits: list[Hit], method: str, task: str, k: int, exclude: int) -> dict:
    return {
        "method": method,
        "method_label": get_method(method).label,
        "task": task,
        "k": k,
        "excluded_index": exclude,
        "results": [h.to_dict() for h in hits],
    }


def _caption(h: Hit) -> str:
    return f"{h.label or 'unlabelled'} · {h.score:.3f}" + (f" · ×{h.copies}" if h.copies > 1 else "")


def _marks_text(marks: dict) -> str:
    pos, neg = marks.get("positives", []), marks.get("negatives", [])
    if not pos and not neg:
        return "No feedback yet: select a result, then mark it **More like this** or **Less like this**."
    fmt = lambda xs: ", ".join(f"#{i}" for i in xs) or "none"  # noqa: E731
    return f"More like: {fmt(pos)} · Less like: {fmt(neg)}. **Search** again to use them."


NO_MARKS = {"positives": [], "negatives": []}
TABLE_COLUMNS = ["rank", "label", "score", "copies"]


class _Handlers:
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
            raise _error(e) from None

    @staticmethod
    def task(value: Any) -> str:
        t = str(value or "").strip().lower()
        t = TASK_ALIASES.get(t, t)
        if t not in TASK_CHOICES:
            raise _error(f"task must be one of {', '.join(TASK_CHOICES)}; got {value!r}.")
        return t

    @staticmethod
    def integer(value: Any, name: str) -> int:
        try:
            f = float(value)
            if f != int(f):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise _error(f"{name} must be a whole number; got {value!r}.") from None
        return int(f)

    @staticmethod
    def values(value: Any, name: str) -> list[str]:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise _error(f"{name} must be a list of label values; got {value!r}.")
        return [str(v) for v in value]

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
    def query_vector(
        self, image: Image.Image, box: Any = None, positives: Any = None, negatives: Any = None, text: Any = None
    ) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Crop, embed, nudge with words and refine with feedback; plus the crop's colour descriptor (None if the
        gallery has none): the query every search and plot of one request uses."""
        try:
            cropped = crop_to_box(image, parse_box(box))
            vec = self.engine.embed(cropped)
            if text and str(text).strip():  # image plus words (CLIP/SigLIP galleries; a clear error otherwise)
                vec = self.engine.compose(vec, str(text))
            return self.engine.refine(vec, positives, negatives), self.engine.describe(cropped)
        except ValueError as e:  # ImageError is a ValueError
            raise _error(e) from None

    def search(
        self, image: Image.Image, method: Any, task: Any, k: Any, exclude: int, types: Any = None,
        colours: Any = None, positives: Any = None, negatives: Any = None, box: Any = None, dedup: Any = True,
        text: Any = None,
    ) -> tuple[list[Hit], dict, Any]:
        m, t, kk = self.method(method), self.task(task), self.integer(k, "k")
        n = len(self.engine.gallery)
        if not -1 <= exclude < n:
            raise _error(f"exclude must be -1 or a gallery index 0..{n - 1}; got {exclude}.")
        filters = {"type": self.values(types, "types"), "colour": self.values(colours, "colours")}
        if not isinstance(dedup, bool):
            raise _error(f"dedup must be true or false; got {dedup!r}.")
        query = self.query_vector(image, box, positives, negatives, text)
        try:
            hits = self.engine.search_vector(
                query[0], m, t, kk, exclude=exclude, filters=filters, dedup=dedup, descriptor=query[1]
            )
        except ValueError as e:
            raise _error(e) from None
        except Exception:
            raise _internal_error("searching") from None
        result = _hits_json(hits, m, t, kk, exclude)
        result.update(
            filters={c: v for c, v in filters.items() if v},
            dedup=dedup,
            positives=[int(i) for i in positives or []],
            negatives=[int(i) for i in negatives or []],
            box=parse_box(box),
        )
        return hits, result, query

    def explain(self, image: Image.Image, index: Any, method: Any, task: Any, box: Any = None) -> tuple[str, str, float]:
        m, t, i = self.method(method), self.task(task), self.integer(index, "index")
        try:
            e, score = self.engine.explain(crop_to_box(image, parse_box(box)), i, m, t)
        except ValueError as err:
            raise _error(err) from None
        except Exception:
            raise _internal_error("explaining the match") from None
        return self._save(e.overlay_a, "explain-query-"), self._save(e.overlay_b, "explain-result-"), round(score, 6)

    def search_text(self, text: Any, k: Any, **options: Any) -> tuple[list[Hit], dict]:
        """Search by words (cosine against the text embedding; CLIP/SigLIP galleries); `options` go to the engine."""
        kk = self.integer(k, "k")
        try:
            hits = self.engine.search_text(str(text or ""), kk, **options)
        except ValueError as e:
            raise _error(e) from None
        result = _hits_json(hits, "cosine", "type", kk, -1)  # /search's shape, plus the normalised text
        filters = options.get("filters") or {}
        result.update(
            filters={c: v for c, v in filters.items() if v}, dedup=options.get("dedup", True), positives=[],
            negatives=[], box=parse_box(None), text=" ".join(str(text).split()),
        )
        return hits, result

    def compare(self, image_a: Any, image_b: Any, method: Any, task: Any) -> float:
        a, b = _decode(image_a), _decode(image_b)
        m, t = self.method(method), self.task(task)
        try:
            return round(self.engine.compare(a, b, m, t), 6)
        except ValueError as e:
            raise _error(e) from None
        except Exception:
            raise _internal_error("comparing the images") from None

    def pick(self) -> int:
        return random.randrange(len(self.engine.gallery))

    def plots(self, query, method: str, task: str, hits: list[Hit]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Score histogram and PCA map for one query: (embedding, colour descriptor or None)."""
        vec, descriptor = query
        scores = self.engine.scores(vec, method, task, descriptor)
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
            raise _error(e) from None
        if self.live is None:
            raise _error("This gallery is not a local folder, so it cannot be changed here (the live gallery "
                         "needs --gallery pointing at a folder).")
        return self.live

    def add(self, images: Any, labels: Any, token: Any) -> list[int]:
        live = self._live(token)
        if isinstance(images, (dict, FileData)) or images is None:
            images = [images] if images is not None else []
        paths = [_upload_path(im) for im in images]
        if not paths:
            raise _error("No images to add: send one or more files with handle_file().")
        try:
            out = live.add(paths, self.values(labels, "labels"))
        except ValueError as e:
            raise _error(e) from None
        return out

    def remove(self, indices: Any, token: Any) -> int:
        live = self._live(token)
        if isinstance(indices, (int, float, str)):
            indices = [v for v in str(indices).replace(",", " ").split()]
        try:
            return live.remove(list(indices or []))
        except ValueError as e:
            raise _error(e) from None

    # -- UI events (private) ----------------------------------------------------------------
    def ui_random(self):
        i = self.pick()
        g = self.engine.gallery
        path = self.image_file(i)
        state = {"index": i, "fingerprint": _fingerprint(load_image(path))}
        attrs = ", ".join(f"{t} {g.attribute(t)[i]}" for t in ("colour", "type") if g.attribute(t)[i])
        info = f"Gallery image #{i}: **{g.labels[i]}**{f' ({attrs})' if attrs else ''}; it is left out of its own results."
        return path, info, state

    def ui_search(
        self, image, method, task, k, picked, types=None, colours=None, dedup=True, box="", marks=None, text=""
    ):
        marks = marks or NO_MARKS
        exclude = -1
        if image is None and str(text or "").strip():  # words only (the box is shown for CLIP/SigLIP galleries)
            filters = {"type": self.values(types, "types"), "colour": self.values(colours, "colours")}
            hits, result = self.search_text(text, k, filters=filters, dedup=bool(dedup))
            vec = (self.engine.text_vector(text), None)
        else:
            img = _decode(image)
            if picked and picked.get("fingerprint") == _fingerprint(img):
                exclude = int(picked["index"])
            hits, result, vec = self.search(
                img, method, task, k, exclude, types, colours, marks["positives"], marks["negatives"], box, bool(dedup),
                text,
            )
        g = self.engine.gallery
        if exclude >= 0:
            result["query"] = {"index": exclude, "label": str(g.labels[exclude])}
        items = [(self.image_file(h.index), _caption(h)) for h in hits]
        rows = []
        for h in hits:
            row = {"rank": h.rank, "label": h.label, "score": round(h.score, 4), "copies": h.copies}
            for task in g.tasks if exclude >= 0 else ():  # no colour labels (CC0 demo): no colour-match column
                if g.attribute(task)[exclude]:
                    row[f"{task} match"] = "✓" if getattr(h, task) == g.attribute(task)[exclude] else "✗"
            rows.append(row)
        hist, pca = self.plots(vec, result["method"], result["task"], hits)
        return items, pd.DataFrame(rows, columns=list(rows[0]) if rows else TABLE_COLUMNS), result, hist, pca


def _toast_only(fn, n_outputs: int):
    """A UI event handler whose errors become a toast, leaving the output panels as they were (no Error badges)."""

    def wrapped(*args):
        try:
            return fn(*args)
        except gr.Error as e:
            gr.Warning(e.message)
            return tuple(gr.skip() for _ in range(n_outputs)) if n_outputs > 1 else gr.skip()

    return wrapped


# ---------------------------------------------------------------------------------------------
# The Blocks
# ---------------------------------------------------------------------------------------------

_BANNER_STYLE = (
    "border:2px solid #b45309;background:#fef3c7;color:#78350f;padding:10px 14px;"
    "border-radius:8px;font-weight:600;font-size:1.05em"
)


def create_app(
    engine: SearchEngine,
    banner: Optional[str] = None,
    gallery_dir: Optional[str | os.PathLike] = None,
    admin_token: Optional[str] = None,
) -> gr.Blocks:
    """The Gradio Blocks for one engine. `banner` defaults to `weights_banner(engine)` (None for real weights).

    With `admin_token` (from CBIR_ADMIN_TOKEN) and a local `gallery_dir`, /add and /remove change the gallery.
    """
    if banner is None:
        banner = weights_banner(engine)
    live = LiveGallery(engine, gallery_dir) if gallery_dir is not None and admin_token else None
    h = _Handlers(engine, live, admin_token)
    g = engine.gallery
    methods = h.methods
    learned = [m for m in methods if get_method(m).learned]
    method_choices = [(get_method(m).label, m) for m in methods]
    accepted = tuple(methods) + tuple(get_method(m).label for m in methods)
    MethodArg = Literal[accepted]  # type: ignore[valid-type]  # names and labels, shown by view_api
    TaskArg = Literal[TASK_CHOICES]  # type: ignore[valid-type]
    values = available_values(engine.label_columns())
    palette = ["#4e79a7", "#59a14f", "#edc948", "#b07aa1", "#76b7b2", "#9c755f", "#bab0ac", "#f28e2b", "#ff9da7"]
    groups = values.get("type", []) + ["unlabelled"]
    map_colours = {t: palette[i % len(palette)] for i, t in enumerate(groups)} | {QUERY: "#000000", RESULT: "#e3001b"}

    # -- public API endpoints (gr.api: typed by these signatures) ----------------------------
    def search(
        image: FileData,
        method: MethodArg = "cosine",
        task: TaskArg = "type",
        k: int = K_DEFAULT,
        exclude: int = -1,
        types: Optional[list[str]] = None,
        colours: Optional[list[str]] = None,
        positives: Optional[list[int]] = None,
        negatives: Optional[list[int]] = None,
        box: Optional[list[float]] = None,
        dedup: bool = True,
        text: str = "",
    ) -> dict:
        """The k gallery images most similar to an image, best first; `text` nudges the query (CLIP/SigLIP galleries).

        Returns {method, method_label, task, k, excluded_index, filters, dedup, positives, negatives, box,
        results: [{rank, index, score, label, colour, type, copies}]}.

        Args:
            image: the query photo (gradio_client.handle_file(path or URL))
            method: a method name or its label, e.g. "cosine" or "Cosine similarity"
            task: type, colour or both: what the learned methods (logreg, forest) judge; ignored by the others
            k: number of results
            exclude: a gallery index to leave out (the index /random returned), or -1
            types: only these garment types (empty = all)
            colours: only these colours (empty = all)
            positives: gallery indices marked "more like this" (relevance feedback)
            negatives: gallery indices marked "less like this"
            box: [x0, y0, x1, y1] in query pixels: search only that part of the image (none = whole image)
            dedup: show identical and near-identical results once, with their number of copies
            text: optional words, e.g. "but in red": the query is unit(image) + unit(text) (cbir.search.engine.TEXT_WEIGHT)
        """
        _, result, _ = h.search(
            _decode(image), method, task, k, h.integer(exclude, "exclude"), types, colours, positives, negatives,
            box, dedup, text,
        )
        return result

    def search_text(
        text: str,
        k: int = K_DEFAULT,
        types: Optional[list[str]] = None,
        colours: Optional[list[str]] = None,
        dedup: bool = True,
    ) -> dict:
        """Search by words, e.g. "red summer dress": galleries embedded with a CLIP or SigLIP backbone (hf:...).

        Returns /search's shape (method "cosine"), plus the normalised `text`.

        Args:
            text: a description of the garment
            k: number of results
            types: only these garment types (empty = all)
            colours: only these colours (empty = all)
            dedup: show identical and near-identical results once, with their number of copies
        """
        if not isinstance(dedup, bool):
            raise _error(f"dedup must be true or false; got {dedup!r}.")
        filters = {"type": h.values(types, "types"), "colour": h.values(colours, "colours")}
        return h.search_text(text, k, filters=filters, dedup=dedup)[1]

    def random_image() -> tuple[FileData, str, int]:
        """A random gallery image: (image file, label, gallery index); pass the index to /search as `exclude`."""
        i = h.pick()
        path = h.image_file(i)
        return FileData(path=path, orig_name=Path(path).name), str(h.engine.gallery.labels[i]), i

    def compare(image_a: FileData, image_b: FileData, method: MethodArg = "cosine", task: TaskArg = "type") -> float:
        """The similarity score of two images under one method (higher = more similar).

        Args:
            image_a: first image (handle_file)
            image_b: second image (handle_file)
            method: a method name or its label
            task: type, colour or both (learned methods only)
        """
        return h.compare(image_a, image_b, method, task)

    def explain(
        image: FileData, index: int, method: MethodArg = "cosine", task: TaskArg = "type",
        box: Optional[list[float]] = None,
    ) -> tuple[FileData, FileData, float]:
        """Why did this match: similarity heat-maps of the query and gallery image `index`, and their score.

        Args:
            image: the query photo (handle_file)
            index: a gallery index (a result's `index`)
            method: the method whose score is returned
            task: type, colour or both (learned methods only)
            box: the crop box the search used, if any
        """
        qa, qb, score = h.explain(_decode(image), index, method, task, box)
        return FileData(path=qa, orig_name=Path(qa).name), FileData(path=qb, orig_name=Path(qb).name), score

    def add(images: list[FileData], labels: Optional[list[str]] = None, token: str = "") -> list[int]:
        """Add images to the gallery (needs the admin token, CBIR_ADMIN_TOKEN); returns their new indices.

        Args:
            images: one or more image files (handle_file)
            labels: one label for all, or one per image: "colour_type" or a type; empty = unlabelled
            token: the value of CBIR_ADMIN_TOKEN on the server
        """
        return h.add(images, labels, token)

    def remove(indices: list[int], token: str = "") -> int:
        """Remove gallery images by index (later images move up; needs CBIR_ADMIN_TOKEN); returns how many.

        Args:
            indices: gallery indices
            token: the value of CBIR_ADMIN_TOKEN on the server
        """
        return h.remove(indices, token)

    n_classes = len(set(g.labels.tolist()))
    with gr.Blocks(title="Apparel image search") as demo:
        gr.Markdown(
            "# Apparel image search\n"
            f"Find the clothes in the gallery that look most like a photo. Gallery: **{len(g)} images** in "
            f"{n_classes} classes; backbone **{engine.extractor.spec.describe()}**; methods: "
            f"{', '.join(get_method(m).label for m in methods)}."
        )
        if banner:
            gr.HTML(f'<div role="alert" id="weights-banner" style="{_BANNER_STYLE}">⚠ {html.escape(banner)}</div>')
        picked = gr.State(None)
        marks = gr.State(dict(NO_MARKS))
        shown = gr.State([])  # gallery indices of the results on screen, in order
        selected = gr.State(None)  # the selected result's gallery index
        corner = gr.State(None)  # the first clicked corner of a crop box
        with gr.Tab("Search"):
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    query = gr.Image(
                        label="Query image",
                        sources=SOURCES,
                        type="filepath",
                        format="png",
                        height=320,
                        elem_id="query-image",
                    )
                    query_text = gr.Textbox(
                        label="Describe the garment",
                        placeholder="red summer dress; or, with an image: but in red",
                        info="Words alone search by description; with an image they nudge it.",
                        visible=engine.supports_text,  # CLIP/SigLIP backbones only
                        elem_id="query-text",
                    )
                    random_btn = gr.Button("Random gallery image")
                    query_info = gr.Markdown("", elem_id="query-info")
                    with gr.Accordion("Crop the query (optional)", open=False, elem_id="crop-panel"):
                        crop_preview = gr.Image(
                            label="Click two corners of the garment to search",
                            type="filepath",
                            interactive=False,
                            height=240,
                            elem_id="crop-preview",
                        )
                        with gr.Row():
                            box = gr.Textbox(
                                label="Crop box (x0, y0, x1, y1)", placeholder="whole image", elem_id="crop-box",
                                scale=3,
                            )
                            whole_btn = gr.Button("Whole image", scale=1, size="sm")
                    method = gr.Dropdown(method_choices, value=engine.default_method(), label="Similarity method")
                    task = gr.Radio(
                        list(TASK_CHOICES),
                        value="type",
                        label="Task (learned methods)",
                        info="What the classifiers judge: same garment type, same colour, or both. "
                        "Cosine and Euclidean ignore it.",
                        visible=bool(learned),
                    )
                    k = gr.Slider(1, K_MAX_UI, value=K_DEFAULT, step=1, label="Number of results (k)")
                    with gr.Accordion("Filters", open=True):
                        types = gr.CheckboxGroup(
                            values.get("type", []), label="Types (none ticked = all)", elem_id="filter-types",
                            visible="type" in values,
                        )
                        colours = gr.CheckboxGroup(
                            values.get("colour", []), label="Colours (none ticked = all)", elem_id="filter-colours",
                            visible="colour" in values,
                        )
                        dedup = gr.Checkbox(True, label="Collapse duplicates (show copies once)", elem_id="dedup")
                    search_btn = gr.Button("Search", variant="primary")
                with gr.Column(scale=2):
                    results = gr.Gallery(
                        label="Results (label · score; select one to see why it matched)",
                        columns=4,
                        height=560,
                        object_fit="contain",
                        elem_id="results-gallery",
                    )
                    with gr.Row(equal_height=True):
                        more_btn = gr.Button("More like this", size="sm", elem_id="more-like")
                        less_btn = gr.Button("Less like this", size="sm", elem_id="less-like")
                        clear_btn = gr.Button("Clear feedback", size="sm")
                    marks_md = gr.Markdown(_marks_text(NO_MARKS), elem_id="feedback-marks")
                    with gr.Group(visible=False) as explain_box:
                        explain_md = gr.Markdown("", elem_id="explain-info")
                        with gr.Row():
                            explain_q = gr.Image(label="Query: where it matches", height=260, elem_id="explain-query",
                                                 interactive=False)
                            explain_r = gr.Image(label="Result: where it matches", height=260,
                                                 elem_id="explain-result", interactive=False)
                    table = gr.Dataframe(label="Ranking", interactive=False, elem_id="results-table", visible=False)
                    with gr.Accordion("Plots", open=True):
                        with gr.Row():
                            hist = gr.BarPlot(
                                x="score", y="count", color="part", label="Query score against the whole gallery",
                                elem_id="score-histogram", height=300, color_map={"top-k": "#e8590c", "rest": "#74a9cf"},
                                caption="Orange bars hold the top-k results: the cut is where orange starts.",
                            )
                            pca = gr.ScatterPlot(
                                x="x", y="y", color="group", label="Gallery map (PCA), query and results marked",
                                elem_id="gallery-map", height=300, tooltip=["group", "index"], color_map=map_colours,
                                caption="Each dot is a gallery image, coloured by type; black = the query, "
                                "red = its results.",
                            )
                    result_json = gr.JSON(label="Results (JSON)", elem_id="results-json")
        with gr.Tab("Compare two images"):
            with gr.Row():
                image_a = gr.Image(label="Image A", sources=SOURCES, type="filepath", height=260)
                image_b = gr.Image(label="Image B", sources=SOURCES, type="filepath", height=260)
            with gr.Row():
                method_c = gr.Dropdown(method_choices, value=engine.default_method(), label="Similarity method")
                task_c = gr.Radio(
                    list(TASK_CHOICES), value="type", label="Task (learned methods)", visible=bool(learned)
                )
            compare_btn = gr.Button("Compare", variant="primary")
            score = gr.Number(None, label="Score (higher = more similar)", precision=4, interactive=False)
        with gr.Tab("Manage gallery", visible=live is not None):
            gr.Markdown("Add or remove gallery images. Changes are saved to the gallery folder at once.")
            token = gr.Textbox(label="Admin token (CBIR_ADMIN_TOKEN)", type="password", elem_id="admin-token")
            with gr.Row():
                with gr.Column():
                    add_files = gr.File(label="Images to add", file_count="multiple", file_types=["image"], elem_id="add-files")
                    add_label = gr.Textbox(label="Label (colour_type or a type; optional)")
                    add_btn = gr.Button("Add to gallery")
                with gr.Column():
                    remove_idx = gr.Textbox(label="Gallery indices to remove (e.g. 3, 17)")
                    remove_btn = gr.Button("Remove from gallery", variant="stop")
            admin_status = gr.Markdown("", elem_id="admin-status")

        # UI events are private (not in view_api, not callable by clients); the API is the gr.api endpoints.
        # preprocess=False: Gradio hands over the upload untouched and the library decodes it, with its clear errors.
        ui = dict(api_visibility="private")
        model = dict(concurrency_id=ENGINE_CONCURRENCY, preprocess=False, **ui)
        search_inputs = [query, method, task, k, picked, types, colours, dedup, box, marks, query_text]
        search_outputs = [results, table, result_json, hist, pca]

        def ui_search(*args):
            items, df, result, hst, pc = h.ui_search(*args)
            return (items, gr.update(value=df, visible=True), result, hst, pc,
                    [r["index"] for r in result["results"]], None, gr.update(visible=False))

        all_outputs = search_outputs + [shown, selected, explain_box]
        reset = (dict(NO_MARKS), _marks_text(NO_MARKS), None, "", None, gr.update(visible=False))
        reset_outputs = [marks, marks_md, selected, box, corner, explain_box]

        random_btn.click(
            lambda: h.ui_random() + reset, None, [query, query_info, picked] + reset_outputs,
            api_name="_ui_random", **ui,
        ).then(_toast_only(ui_search, len(all_outputs)), search_inputs, all_outputs, api_name="_ui_search_random",
               **model)
        # A user upload, webcam shot, paste or clear replaces the picked gallery image: forget it and its feedback.
        query.input(lambda: (None, "") + reset, None, [picked, query_info] + reset_outputs, api_name="_ui_forget",
                    queue=False, **ui)
        def ui_check_upload(payload):
            try:
                _decode(payload)
            except gr.Error as e:
                gr.Warning(e.message)
                return None
            return gr.skip()

        query.upload(ui_check_upload, query, query, api_name="_ui_check_upload", preprocess=False, **ui)
        query.change(lambda p: p, query, crop_preview, api_name="_ui_preview", queue=False, **ui)
        search_btn.click(_toast_only(ui_search, len(all_outputs)), search_inputs, all_outputs, api_name="_ui_search",
                         **model)

        def ui_corner(path, first, evt: gr.SelectData):
            point = [float(v) for v in evt.index]
            if first is None:
                return gr.skip(), point, f"{point[0]:.0f}, {point[1]:.0f}, …"
            b = box_from_corners(first, point)
            boxed = h._save(draw_box(load_image(query_path_or(path)), b), "crop-")
            return boxed, None, ", ".join(f"{v:.0f}" for v in b)

        def query_path_or(path):
            return path if isinstance(path, str) else (path or {}).get("path")

        crop_preview.select(ui_corner, [query, corner], [crop_preview, corner, box], api_name="_ui_corner",
                            queue=False, **ui)
        whole_btn.click(lambda p: (p, None, ""), query, [crop_preview, corner, box], api_name="_ui_whole",
                        queue=False, **ui)

        def ui_select(shown_idx, evt: gr.SelectData):
            return shown_idx[evt.index] if shown_idx and evt.index is not None and evt.index < len(shown_idx) else None

        def ui_explain(image, i, method_v, task_v, box_v):
            if i is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.update(visible=False)
            qa, qb, sc = h.explain(_decode(image), i, method_v, task_v, box_v)
            gl = h.engine.gallery
            info = (f"**Why #{i} ({gl.labels[i] or 'unlabelled'}) matched** (score {sc:.3f}): warm colours mark where "
                    "each image's last feature map is most like the other image as a whole.")
            return qa, qb, info, gr.update(visible=True)

        results.select(ui_select, shown, selected, api_name="_ui_select", queue=False, **ui).then(
            _toast_only(ui_explain, 4), [query, selected, method, task, box], [explain_q, explain_r, explain_md,
                                                                               explain_box],
            api_name="_ui_explain", **model,
        )

        def ui_mark(kind):
            def mark(m, i):
                if i is None:
                    gr.Warning("Select a result first (click its thumbnail).")
                    return gr.skip(), gr.skip()
                other = "negatives" if kind == "positives" else "positives"
                m = {kind: sorted(set(m[kind]) | {int(i)}), other: [x for x in m[other] if x != int(i)]}
                return m, _marks_text(m)

            return mark

        more_btn.click(ui_mark("positives"), [marks, selected], [marks, marks_md], api_name="_ui_more", queue=False,
                       **ui)
        less_btn.click(ui_mark("negatives"), [marks, selected], [marks, marks_md], api_name="_ui_less", queue=False,
                       **ui)
        clear_btn.click(lambda: (dict(NO_MARKS), _marks_text(NO_MARKS)), None, [marks, marks_md],
                        api_name="_ui_clear", queue=False, **ui)
        compare_btn.click(h.compare, [image_a, image_b, method_c, task_c], score, api_name="_ui_compare", **model)

        def ui_add(files, label, tok):
            added = h.add([{"path": f} if isinstance(f, str) else f for f in files or []],
                          [label] if label else [], tok)
            return f"Added {len(added)} image(s) as gallery indices {', '.join(map(str, added))}."

        def ui_remove(idx, tok):
            return f"Removed {h.remove(idx, tok)} image(s); the gallery now has {len(h.engine.gallery)}."

        add_btn.click(_toast_only(ui_add, 1), [add_files, add_label, token], admin_status, api_name="_ui_add",
                      concurrency_id=ENGINE_CONCURRENCY, **ui)
        remove_btn.click(_toast_only(ui_remove, 1), [remove_idx, token], admin_status, api_name="_ui_remove",
                         concurrency_id=ENGINE_CONCURRENCY, **ui)

        endpoints = [
            (gr.api(search, api_name="search", concurrency_id=ENGINE_CONCURRENCY), ["results"]),
            (gr.api(search_text, api_name="search_text", concurrency_id=ENGINE_CONCURRENCY), ["results"]),
            (gr.api(random_image, api_name="random"), ["image", "label", "index"]),
            (gr.api(compare, api_name="compare", concurrency_id=ENGINE_CONCURRENCY), ["score"]),
            (gr.api(explain, api_name="explain", concurrency_id=ENGINE_CONCURRENCY),
             ["query_overlay", "result_overlay", "score"]),
            (gr.api(add, api_name="add", concurrency_id=ENGINE_CONCURRENCY), ["indices"]),
            (gr.api(remove, api_name="remove", concurrency_id=ENGINE_CONCURRENCY), ["count"]),
        ]
    for dep, names in endpoints:  # name the return values in view_api (gr.api calls them 1st, 2nd, ...)
        for block_id, name in zip(dep["outputs"], names):
            demo.blocks[block_id].label = name
    return demo


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # before the engine: the ONNX Runtime / OpenVINO session takes torch's thread count when it is made
    limit_threads(args.threads or max(1, (os.cpu_count() or 1) // max(1, args.concurrency)))
    # Gradio rebuilds a pandas summary of its last 10,000 events after every event (default frequency 1): O(events)
    # of CPU per request, ~5% of a loaded server's; every 1000 events keeps its monitoring figures fresh enough.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    try:
        engine = build_engine(args)
    except (WeightsUnavailableError, BackboneMismatchError, OSError, ValueError, ImportError) as e:
        print(f"error: cannot start: {e}", file=sys.stderr)
        return 1
    banner = weights_banner(engine)
    if banner:
        log.warning(banner)
    gallery_dir = args.gallery or str(DEMO_GALLERY)
    demo = create_app(engine, banner, gallery_dir if is_local(gallery_dir) else None, admin_token())
    demo.queue(default_concurrency_limit=args.concurrency)
    log.info("queue: %d model calls at a time, %d threads each", args.concurrency, torch.get_num_threads())
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_FILE_SIZE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
