#!/usr/bin/env python
"""Gradio app: search a clothing gallery by image (content-based image retrieval).

`python app.py` starts on the embedded demo gallery. Everything is loaded once at start-up; the
request handlers below only translate between Gradio and `cbir.search.SearchEngine`.

API (gradio_client): /search, /random and /compare; see `create_app`.
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
import pandas as pd
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal
from PIL import Image

from cbir.demo import DEMO_CLASSIFIERS, DEMO_GALLERY
from cbir.features import BackboneMismatchError, WeightsUnavailableError
from cbir.images import ImageError, load_image
from cbir.search import Hit, SearchEngine, load_engine
from cbir.similarity import TASK_CHOICES, get_method, resolve_method

log = logging.getLogger("cbir.app")

K_MAX_UI = 50
K_DEFAULT = 10
TASK_ALIASES = {"color": "colour"}
BROWSER_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})  # served as stored; others become PNG
SOURCES = ["upload", "webcam", "clipboard"]
ENGINE_CONCURRENCY = "engine"  # every event that runs the model shares one concurrency group


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
    w = p.add_mutually_exclusive_group()
    w.add_argument(
        "--weights",
        default=None,
        help="local backbone weights file for a gallery embedded with pretrained weights (default: timm's Hub weights)",
    )
    w.add_argument(
        "--random-weights",
        action="store_true",
        help="SMOKE RUN ONLY: embed queries with random-init weights when the gallery was embedded with pretrained "
        "ones (scores are meaningless; a warning banner is shown)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: %(default)s)")
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
    return p.parse_args(argv)


def _is_demo(gallery_arg: Optional[str]) -> bool:
    if gallery_arg is None:
        return True
    try:
        return Path(gallery_arg).resolve() == DEMO_GALLERY.resolve()
    except OSError:
        return False


def build_engine(args: argparse.Namespace) -> SearchEngine:
    """Load gallery, backbone and classifiers once (weights policy: `cbir.search.extractor_for`).

    The demo gallery comes with the demo classifiers; any other gallery has none unless `--classifiers` is given.
    """
    gallery = args.gallery or str(DEMO_GALLERY)
    classifiers = args.classifiers
    if classifiers is None and _is_demo(args.gallery):
        classifiers = str(DEMO_CLASSIFIERS)
    if classifiers and classifiers.lower() == "none":
        classifiers = None
    log.info("loading gallery %s and classifiers %s", gallery, classifiers)
    engine = load_engine(gallery, classifiers, args.weights, args.random_weights, args.device)
    log.info(
        "ready: %d gallery images, backbone %s on %s, methods %s",
        len(engine.gallery), engine.extractor.spec.describe(), engine.extractor.device,
        ", ".join(engine.available_methods()),
    )
    return engine


def weights_banner(engine: SearchEngine) -> Optional[str]:
    """The warning every page must show when features come from random-init weights, else None."""
    return engine.weights_warning()


# ---------------------------------------------------------------------------------------------
# Request helpers (thin: all retrieval logic is in cbir.search)
# ---------------------------------------------------------------------------------------------


def _error(message: object) -> gr.Error:
    """A message for the user (a library error's text is already written for users); no traceback in the log."""
    return gr.Error(html.escape(str(message), quote=False), print_exception=False)


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


class _Handlers:
    """Request handlers bound to one engine; the UI events and the API endpoints share them."""

    def __init__(self, engine: SearchEngine) -> None:
        self.engine = engine
        self.methods = engine.available_methods()
        self._image_dir = Path(tempfile.mkdtemp(prefix="cbir-app-"))
        atexit.register(shutil.rmtree, self._image_dir, ignore_errors=True)
        self._files: dict[int, str] = {}

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

    # -- gallery images ---------------------------------------------------------------------
    def image_file(self, i: int) -> str:
        """Gallery image i as a file, written once: its original bytes when browsers show that format, else PNG."""
        if i in self._files:
            return self._files[i]
        data, suffix = self.engine.gallery.image_bytes(i, BROWSER_FORMATS)
        path = self._image_dir / f"gallery-{i:06d}{suffix}"
        with tempfile.NamedTemporaryFile(dir=self._image_dir, suffix=".part", delete=False) as f:
            f.write(data)
        os.replace(f.name, path)
        self._files[i] = str(path)
        return str(path)

    # -- core -------------------------------------------------------------------------------
    def search(self, image: Image.Image, method: Any, task: Any, k: Any, exclude: int) -> tuple[list[Hit], dict]:
        m, t, kk = self.method(method), self.task(task), self.integer(k, "k")
        if not -1 <= exclude < len(self.engine.gallery):
            raise _error(f"exclude must be -1 or a gallery index 0..{len(self.engine.gallery) - 1}; got {exclude}.")
        try:
            hits = self.engine.search(image, m, t, kk, exclude=exclude)
        except ValueError as e:
            raise _error(e) from None
        return hits, _hits_json(hits, m, t, kk, exclude)

    def compare(self, image_a: Any, image_b: Any, method: Any, task: Any) -> float:
        a, b = _decode(image_a), _decode(image_b)
        m, t = self.method(method), self.task(task)
        try:
            return round(self.engine.compare(a, b, m, t), 6)
        except ValueError as e:
            raise _error(e) from None

    def pick(self) -> int:
        return random.randrange(len(self.engine.gallery))

    # -- UI events (private) ----------------------------------------------------------------
    def ui_random(self):
        i = self.pick()
        g = self.engine.gallery
        path = self.image_file(i)
        state = {"index": i, "fingerprint": _fingerprint(load_image(path))}
        info = (
            f"Gallery image #{i}: **{g.labels[i]}** (colour {g.colours[i]}, type {g.types[i]}); "
            "it is left out of its own results."
        )
        return path, info, state

    def ui_search(self, image, method, task, k, picked):
        img = _decode(image)
        exclude = -1
        if picked and picked.get("fingerprint") == _fingerprint(img):
            exclude = int(picked["index"])
        hits, result = self.search(img, method, task, k, exclude)
        g = self.engine.gallery
        if exclude >= 0:
            result["query"] = {"index": exclude, "label": str(g.labels[exclude])}
        items = [(self.image_file(h.index), f"{h.label} · {h.score:.3f}") for h in hits]
        rows = []
        for h in hits:
            row = {"rank": h.rank, "label": h.label, "score": round(h.score, 4)}
            if exclude >= 0:
                row["type match"] = "✓" if h.type == g.types[exclude] else "✗"
                row["colour match"] = "✓" if h.colour == g.colours[exclude] else "✗"
            rows.append(row)
        return items, pd.DataFrame(rows), result


# ---------------------------------------------------------------------------------------------
# The Blocks
# ---------------------------------------------------------------------------------------------

_BANNER_STYLE = (
    "border:2px solid #b45309;background:#fef3c7;color:#78350f;padding:10px 14px;"
    "border-radius:8px;font-weight:600;font-size:1.05em"
)


def create_app(engine: SearchEngine, banner: Optional[str] = None) -> gr.Blocks:
    """The Gradio Blocks for one engine. `banner` defaults to `weights_banner(engine)` (None for real weights)."""
    if banner is None:
        banner = weights_banner(engine)
    h = _Handlers(engine)
    g = engine.gallery
    methods = h.methods
    learned = [m for m in methods if get_method(m).learned]
    method_choices = [(get_method(m).label, m) for m in methods]
    accepted = tuple(methods) + tuple(get_method(m).label for m in methods)
    MethodArg = Literal[accepted]  # type: ignore[valid-type]  # names and labels, shown by view_api
    TaskArg = Literal[TASK_CHOICES]  # type: ignore[valid-type]

    # -- public API endpoints (gr.api: typed by these signatures) ----------------------------
    def search(
        image: FileData, method: MethodArg = "cosine", task: TaskArg = "type", k: int = K_DEFAULT, exclude: int = -1
    ) -> dict:
        """The k gallery images most similar to an image, best first.

        Returns {method, method_label, task, k, excluded_index, results: [{rank, index, score, label, colour, type}]}.

        Args:
            image: the query photo (gradio_client.handle_file(path or URL))
            method: a method name or its label, e.g. "cosine" or "Cosine similarity"
            task: type, colour or both: what the learned methods (logreg, forest) judge; ignored by the others
            k: number of results
            exclude: a gallery index to leave out (the index /random returned), or -1
        """
        hits, result = h.search(_decode(image), method, task, k, h.integer(exclude, "exclude"))
        return result

    def random_image() -> tuple[FileData, str, int]:
        """A random gallery image: (image file, label, gallery index); pass the index to /search as `exclude`."""
        i = h.pick()
        path = h.image_file(i)
        return FileData(path=path, orig_name=Path(path).name), str(g.labels[i]), i

    def compare(image_a: FileData, image_b: FileData, method: MethodArg = "cosine", task: TaskArg = "type") -> float:
        """The similarity score of two images under one method (higher = more similar).

        Args:
            image_a: first image (handle_file)
            image_b: second image (handle_file)
            method: a method name or its label
            task: type, colour or both (learned methods only)
        """
        return h.compare(image_a, image_b, method, task)

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
                    random_btn = gr.Button("Random gallery image")
                    query_info = gr.Markdown("", elem_id="query-info")
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
                    search_btn = gr.Button("Search", variant="primary")
                with gr.Column(scale=2):
                    results = gr.Gallery(
                        label="Results (label · score)",
                        columns=4,
                        height=640,
                        object_fit="contain",
                        elem_id="results-gallery",
                    )
                    table = gr.Dataframe(label="Ranking", interactive=False, elem_id="results-table")
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

        # UI events are private (not in view_api, not callable by clients); the API is the three gr.api endpoints.
        # preprocess=False: Gradio hands over the upload untouched and the library decodes it, with its clear errors.
        ui = dict(api_visibility="private")
        model = dict(concurrency_id=ENGINE_CONCURRENCY, preprocess=False, **ui)
        random_btn.click(h.ui_random, None, [query, query_info, picked], api_name="_ui_random", **ui)
        # A user upload, webcam shot, paste or clear replaces the picked gallery image: forget it.
        query.input(lambda: (None, ""), None, [picked, query_info], api_name="_ui_forget", queue=False, **ui)
        search_btn.click(
            h.ui_search, [query, method, task, k, picked], [results, table, result_json], api_name="_ui_search", **model
        )
        compare_btn.click(h.compare, [image_a, image_b, method_c, task_c], score, api_name="_ui_compare", **model)

        endpoints = [
            (gr.api(search, api_name="search", concurrency_id=ENGINE_CONCURRENCY), ["results"]),
            (gr.api(random_image, api_name="random"), ["image", "label", "index"]),
            (gr.api(compare, api_name="compare", concurrency_id=ENGINE_CONCURRENCY), ["score"]),
        ]
    for dep, names in endpoints:  # name the return values in view_api (gr.api calls them 1st, 2nd, ...)
        for block_id, name in zip(dep["outputs"], names):
            demo.blocks[block_id].label = name
    return demo


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        engine = build_engine(args)
    except (WeightsUnavailableError, BackboneMismatchError, OSError, ValueError) as e:
        print(f"error: cannot start: {e}", file=sys.stderr)
        return 1
    banner = weights_banner(engine)
    if banner:
        log.warning(banner)
    demo = create_app(engine, banner)
    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size="25mb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
