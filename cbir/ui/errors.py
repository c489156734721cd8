"""Errors for users: a clear message in the browser or client, one INFO log line, no traceback."""

from __future__ import annotations

import logging
from typing import Any, Callable

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal
from PIL import Image

from cbir.images import ImageError, load_image

log = logging.getLogger("cbir.app")


def user_error(message: object) -> gr.Error:
    """A message for the user (a library error's text is already written for users); no traceback in the log.

    Not HTML-escaped: API clients get the text as is, and the browser's toast sanitises what it shows."""
    log.info("request refused: %s", message)
    return gr.Error(str(message), print_exception=False)


def internal_error(action: str) -> gr.Error:
    """An unexpected failure: the traceback goes to the server log, the user gets what to do."""
    log.exception("unexpected error while %s", action)
    return user_error(f"The server failed while {action} (the details are in its log): try again, or try another image.")


def upload_path(payload: Any) -> str:
    """The server-side path of an uploaded image; only files in Gradio's upload folder are accepted."""
    if payload is None:
        raise user_error("No image: upload an image (or pick a random gallery image) first.")
    if isinstance(payload, FileData):
        payload = payload.model_dump()
    path = payload.get("path") if isinstance(payload, dict) else None
    if not isinstance(path, str) or not path:
        raise user_error("The image must be sent as a file, e.g. gradio_client.handle_file('photo.jpg').")
    if not is_in_or_equal(path, get_upload_folder()):
        raise user_error("The image was not uploaded with this request; send it with handle_file().")
    return path


def decode(payload: Any) -> Image.Image:
    """The uploaded image, decoded by the library (its ImageError becomes a user error)."""
    try:
        return load_image(upload_path(payload))
    except ImageError as e:
        raise user_error(e) from None


def toast_only(fn: Callable, n_outputs: int) -> Callable:
    """A UI event handler whose errors become a toast, leaving the output panels as they were (no Error badges)."""

    def wrapped(*args):
        try:
            return fn(*args)
        except gr.Error as e:
            gr.Warning(e.message)
            return tuple(gr.skip() for _ in range(n_outputs)) if n_outputs > 1 else gr.skip()

    return wrapped
