"""Serve the app for a test: built as `python app.py ARGV` builds it, launched on 127.0.0.1 (Gradio's own way)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import app


@contextmanager
def served(argv: list[str]) -> Iterator[str]:
    """The app for `argv`, launched without blocking; yields its local URL and closes it afterwards."""
    demo = app.create_app(app.build_engine(app.parse_args(argv)))
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True,
                max_file_size=app.MAX_FILE_SIZE)
    try:
        yield demo.local_url
    finally:
        demo.close()
