"""The app's command line: `parse_args` (every option also has an environment variable)."""

from __future__ import annotations

import argparse
import os
from typing import Optional

from cbir.embed.runtime import RUNTIME_CHOICES

MAX_FILE_SIZE = "25mb"  # larger uploads are refused by Gradio (client and server) before any handler runs
DEFAULT_CONCURRENCY = 2  # model calls at a time (README, "Soak under load": measured on 2 cores)


def _add_sources(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument(
        "--gallery",
        default=env("CBIR_GALLERY") or None,
        help="gallery: local save_to_disk folder or Hub dataset id (env CBIR_GALLERY; default: the embedded demo)",
    )
    p.add_argument(
        "--classifiers",
        default=env("CBIR_CLASSIFIERS") or None,
        help="classifiers: local folder or Hub model id, or 'none' (env CBIR_CLASSIFIERS; default: the attribute "
        "models shipped with the gallery's backbone (the demo's type and colour models and whitening for a gallery "
        "of the demo's backbone, the build_index.py default), else none, which hides the learned methods)",
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


def _add_serving(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: %(default)s)")
    p.add_argument(
        "--runtime",
        default=env("CBIR_RUNTIME") or "auto",
        choices=RUNTIME_CHOICES,
        help="query forward pass: openvino, onnx (ONNX Runtime), torch, or auto: for pretrained weights on the CPU, "
        "OpenVINO when it is installed, else ONNX Runtime, else torch; torch on a GPU and for random weights "
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


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The app's options from `argv` (default: sys.argv) and the environment."""
    p = argparse.ArgumentParser(
        description="Content-based image retrieval for clothing photos (Gradio app). "
        "With no options it serves the embedded demo gallery.",
    )
    _add_sources(p)
    _add_serving(p)
    return p.parse_args(argv)
