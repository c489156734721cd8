#!/usr/bin/env python
"""Gradio app: search a clothing gallery by image (content-based image retrieval).

`python app.py` starts on the embedded demo gallery. Everything is loaded once at start-up; the user interface
(layout, handlers, API endpoints) is in `cbir.ui`, the retrieval in `cbir.search.engine.SearchEngine`.

API (gradio_client): /search, /search_batch, /search_text, /random, /compare, /explain, /add and /remove; see `cbir.ui.api`.
"""

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import gradio as gr
import torch

from cbir.embed.extractor import WeightsUnavailableError
from cbir.embed.runtime import limit_threads
from cbir.embed.spec import BackboneMismatchError
from cbir.gallery.demo import DEMO_CLASSIFIERS, DEMO_GALLERY
from cbir.gallery.live import LiveGallery, admin_token
from cbir.gallery.sources import holdout_examples
from cbir.hub import is_local
from cbir.search.engine import SearchEngine
from cbir.search.loading import load_engine
from cbir.ui.api import name_outputs, register_api
from cbir.ui.events import UI, wire_events
from cbir.ui.handlers import Handlers as _Handlers
from cbir.ui.layout import CSS, build_layout, intro_text, theme
from cbir.ui.options import DEFAULT_CONCURRENCY, MAX_FILE_SIZE, parse_args

__all__ = ["parse_args", "build_engine", "weights_banner", "create_app", "main", "MAX_FILE_SIZE",
           "DEFAULT_CONCURRENCY", "_Handlers"]

log = logging.getLogger("cbir.app")
STATUS_UPDATE_SECONDS = 2.0


def _is_demo(gallery_arg: Optional[str]) -> bool:
    if gallery_arg is None:
        return True
    try:
        return Path(gallery_arg).resolve() == DEMO_GALLERY.resolve()
    except OSError:
        return False


def build_engine(args: argparse.Namespace) -> SearchEngine:
    """Load gallery, backbone and classifiers once (weights policy: `cbir.search.loading.extractor_for`).

    The demo gallery comes with the demo classifiers; any other gallery gets the attribute models shipped with its
    backbone (the demo's, for a gallery of the demo's backbone) unless `--classifiers` names others or 'none'.
    """
    gallery = args.gallery or str(DEMO_GALLERY)
    classifiers = args.classifiers
    shipped = classifiers is None
    if classifiers is None and _is_demo(args.gallery):
        classifiers = str(DEMO_CLASSIFIERS)
    if classifiers and classifiers.lower() == "none":
        classifiers = None
    log.info("loading gallery %s and classifiers %s", gallery, classifiers)
    engine = load_engine(
        gallery, classifiers, args.weights, args.random_weights, args.device, runtime=args.runtime,
        gallery_revision=args.gallery_revision, classifiers_revision=args.classifiers_revision if classifiers else None,
        store=args.store, shipped=shipped,
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
    # examples: the demo's for the demo (or a gallery of unknown folder), else the gallery's own held-out photos
    h = _Handlers(engine, live, admin_token)
    with warnings.catch_warnings():  # Gradio 6 prefers launch(css=...); here every launcher (tests too) gets it
        warnings.filterwarnings("ignore", message="The parameters have been moved", category=UserWarning)
        demo = gr.Blocks(title="Apparel image search", css=CSS, theme=theme())
    examples = None if gallery_dir is None or _is_demo(str(gallery_dir)) else holdout_examples(gallery_dir)
    with demo:
        view = build_layout(engine, h.methods, banner, admin=live is not None, examples=examples)
        wire_events(view, h)
        # a page opened after an /add or /remove shows the count as it is now (no queue, no overlay: the page stays usable)
        demo.load(lambda: intro_text(engine), None, view.intro, queue=False, show_progress="hidden", **UI)
        endpoints = register_api(h)
    name_outputs(demo, endpoints)
    return demo


def main(argv: Optional[list[str]] = None) -> int:
    """Parse the options, load the engine, launch the app; 1 if it cannot start."""
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
    # Queue positions every STATUS_UPDATE_SECONDS, not to every waiting client at each job start (O(queue) messages
    # per request under load; gradio_client callers never read them).
    demo.queue(default_concurrency_limit=args.concurrency, status_update_rate=STATUS_UPDATE_SECONDS)
    log.info("queue: %d model calls at a time, %d threads each", args.concurrency, torch.get_num_threads())
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_FILE_SIZE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
