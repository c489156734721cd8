"""Hugging Face Hub I/O: every artefact loads from a local folder or a Hub repo id; pushing is explicit."""

from __future__ import annotations

import os
from pathlib import Path


def is_local(source: str | os.PathLike) -> bool:
    """A source is local when it names an existing path; `user/name` is a Hub repo id.

    A path-like source that does not exist (absolute, `./x`, `a/b/c`) is a clear error, not a Hub call.
    """
    if Path(source).exists():
        return True
    s = str(source)
    if os.path.isabs(s) or s.startswith(".") or s.count("/") > 1 or os.sep != "/" and os.sep in s:
        raise FileNotFoundError(f"{s} does not exist (and is not a Hub repo id of the form user/name)")
    return False


def fetch_file(source: str | os.PathLike, filename: str, repo_type: str = "model") -> Path:
    """Path of `filename` inside a local folder, or downloaded from the Hub repo `source`."""
    if is_local(source):
        path = Path(source) / filename
        if not path.is_file():
            raise FileNotFoundError(f"{filename} not found in {source}")
        return path
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id=str(source), filename=filename, repo_type=repo_type))


def push_gallery(gallery_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Push a saved gallery (dataset + embedding spec) to a Hub dataset repo; returns its URL."""
    import datasets
    from huggingface_hub import HfApi

    from .colour import COLOUR_SPEC_FILE
    from .data import SPEC_FILE

    ds = datasets.load_from_disk(str(gallery_dir))
    ds.push_to_hub(repo_id, private=private, token=token)
    for name in (SPEC_FILE, COLOUR_SPEC_FILE):  # the colour spec exists only beside a colour descriptor column
        if (Path(gallery_dir) / name).is_file():
            HfApi(token=token).upload_file(
                path_or_fileobj=str(Path(gallery_dir) / name), path_in_repo=name, repo_id=repo_id, repo_type="dataset"
            )
    return f"https://huggingface.co/datasets/{repo_id}"


def push_folder(folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload a classifier folder (skops files, JSON cards, pairs) to a Hub model repo; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
    return f"https://huggingface.co/{repo_id}"
