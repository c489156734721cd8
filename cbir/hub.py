"""Hugging Face Hub I/O: every artefact loads from a local folder or a Hub repo id; pushing is explicit.

Loading fails fast without network: HF's offline variables are honoured, otherwise one short TCP probe
(cached for a minute) decides whether the Hub is reachable; when it is not, loads run in offline mode
and are answered from the local cache or refused at once. A repo that does not exist is told apart from
an unreachable Hub, and every Hub load can be pinned to a `revision` (branch, tag or commit).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar
from urllib.parse import urlparse

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0  # seconds for the TCP connect to the Hub: well inside the 5 s a user waits for an answer
PROBE_TTL = 60.0  # seconds a probe's answer is reused
_probe_cache: dict[str, tuple[float, bool]] = {}
T = TypeVar("T")


class HubUnavailableError(ConnectionError):
    """The Hub cannot be reached (or offline mode is on) and the artefact is not in the local cache."""


class HubNotFoundError(FileNotFoundError):
    """The Hub answered: no such repo (or it is private), revision or file."""


def hub_offline_configured() -> bool:
    """HF's own offline switches (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE, TRANSFORMERS_OFFLINE)."""
    import huggingface_hub.constants as hfc

    env = (os.environ.get(v, "") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(hfc.HF_HUB_OFFLINE) or any(e.strip().upper() in {"1", "ON", "YES", "TRUE"} for e in env)


def hub_reachable(timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within `timeout` s; the answer is cached PROBE_TTL s."""
    import huggingface_hub.constants as hfc

    url = urlparse(hfc.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    key = f"{host}:{port}"
    cached = _probe_cache.get(key)
    if cached and time.monotonic() - cached[0] < PROBE_TTL:
        return cached[1]
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        ok = True
    except OSError as e:
        log.info("Hugging Face Hub at %s is unreachable: %s", key, e)
        ok = False
    _probe_cache[key] = (time.monotonic(), ok)
    return ok


def hub_status() -> str:
    """`offline` (configured), `unreachable` (the probe failed) or `online`."""
    if hub_offline_configured():
        return "offline"
    return "online" if hub_reachable() else "unreachable"


_WHY = {
    "offline": "offline mode is on (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set)",
    "unreachable": "the Hugging Face Hub cannot be reached (no connection within {t:g} s)",
}


@contextmanager
def offline_unless_reachable() -> Iterator[str]:
    """Run Hub loads in offline mode (cache only, no retries) unless the Hub is reachable; yields the status."""
    status = hub_status()
    if status == "online":
        yield status
        return
    import datasets.config
    import huggingface_hub.constants as hfc

    saved = hfc.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE
    hfc.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    try:
        yield status
    finally:
        hfc.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE = saved


@functools.lru_cache(maxsize=64)  # a repo that exists is asked about once; failures are not cached
def check_repo(repo_id: str, repo_type: str = "model", revision: Optional[str] = None) -> None:
    """When the Hub is reachable, ask it (short timeout) whether the repo and revision exist."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    kind = "dataset" if repo_type == "dataset" else "model"
    try:
        HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision, timeout=PROBE_TIMEOUT * 2)
    except RevisionNotFoundError:
        raise HubNotFoundError(
            f"the Hub {kind} repo {repo_id} has no revision {revision!r}: check the branch, tag or commit"
        ) from None
    except RepositoryNotFoundError:
        raise HubNotFoundError(
            f"no Hub {kind} repo {repo_id} (it does not exist, or it is private: log in with `hf auth login`); "
            "for a local folder give its path"
        ) from None


def hub_load(load: Callable[[], T], repo_id: str, repo_type: str = "model", revision: Optional[str] = None) -> T:
    """Run `load` (a Hub download) failing fast: checked against the Hub when reachable, else from the cache only."""
    with offline_unless_reachable() as status:
        if status == "online":
            check_repo(repo_id, repo_type, revision)
            return load()
        try:
            return load()
        except Exception as e:  # noqa: BLE001  whatever the cache lookup raises, the answer is "not available offline"
            log.info("offline load of %s %s failed: %s: %s", repo_type, repo_id, type(e).__name__, e)
            at = f" at revision {revision}" if revision else ""
            raise HubUnavailableError(
                f"{_WHY[status].format(t=PROBE_TIMEOUT)}, and the {repo_type} {repo_id}{at} is not in the local "
                "cache: connect to the internet, or give a local folder instead of a Hub id"
            ) from None


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


def check_revision(source: str | os.PathLike, revision: Optional[str]) -> None:
    """A revision pins a Hub repo; given with a local folder it is a mistake worth saying."""
    if revision and is_local(source):
        raise ValueError(f"a revision ({revision}) pins a Hub repo id, but {source} is a local folder: drop the revision")


def fetch_file(
    source: str | os.PathLike, filename: str, repo_type: str = "model", revision: Optional[str] = None
) -> Path:
    """Path of `filename` inside a local folder, or downloaded from the Hub repo `source` (at `revision`)."""
    check_revision(source, revision)
    if is_local(source):
        path = Path(source) / filename
        if not path.is_file():
            raise FileNotFoundError(f"{filename} not found in {source}")
        return path
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    def download() -> Path:
        try:
            return Path(huggingface_hub.hf_hub_download(
                repo_id=str(source), filename=filename, repo_type=repo_type, revision=revision
            ))
        except EntryNotFoundError:
            raise HubNotFoundError(f"{filename} not found in the Hub {repo_type} repo {source}") from None

    return hub_load(download, str(source), repo_type, revision)


def push_dataset(
    dataset_dir: str | os.PathLike,
    repo_id: str,
    extra_files: tuple[str, ...] = (),
    private: bool = False,
    token: str | None = None,
) -> str:
    """Push a `save_to_disk` dataset folder to a Hub dataset repo, plus named files beside it; returns its URL."""
    import datasets
    from huggingface_hub import HfApi

    ds = datasets.load_from_disk(str(dataset_dir))
    ds.push_to_hub(repo_id, private=private, token=token)
    api = HfApi(token=token)
    for name in extra_files:
        api.upload_file(
            path_or_fileobj=str(Path(dataset_dir) / name), path_in_repo=name, repo_id=repo_id, repo_type="dataset"
        )
    return f"https://huggingface.co/datasets/{repo_id}"


def push_folder(folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload a classifier folder (skops files, JSON cards, pairs) to a Hub model repo; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
    return f"https://huggingface.co/{repo_id}"
