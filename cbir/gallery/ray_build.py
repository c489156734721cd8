"""The gallery build on a Ray cluster: each chunk's image list becomes a Ray Dataset embedded in `map_batches`
by a pool of actors, one FeatureExtractor each (same model, preprocessing, runtime and colour descriptor as
the single-process build). RayEmbedder is an Embedder, so cbir.gallery.build's streaming build drives it
unchanged: the same shards, resume, store upserts and gallery."""

from __future__ import annotations

import os
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from cbir.embed.spec import EmbeddedFiles, EmbeddingSpec

PATH, ROW = "path", "row"


class _EmbedActor:
    """One FeatureExtractor per Ray worker, built once; embeds a batch of paths (unreadable files are flagged)."""

    def __init__(self, extractor_kwargs: dict[str, Any], describe: Any) -> None:
        from cbir.embed.extractor import FeatureExtractor

        self.extractor = FeatureExtractor(**extractor_kwargs)
        self.describe = describe

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch[PATH]]
        got = self.extractor.embed_files(paths, batch_size=len(paths), progress=False, describe=self.describe)
        n, dim = len(paths), self.extractor.spec.dim
        vecs = np.zeros((n, dim), np.float32)
        vecs[got.kept] = got.vectors
        out = {ROW: batch[ROW], "vector": vecs, "ok": np.isin(np.arange(n), got.kept),
               "error": np.array([got.errors.get(i, "") for i in range(n)], dtype=object)}
        if got.described is not None:
            desc = np.zeros((n, got.described.shape[1]), np.float32)
            desc[got.kept] = got.described
            out["descriptor"] = desc
        return out


def init_ray(address: Optional[str] = None, num_cpus: Optional[int] = None) -> Any:
    """Connect to the cluster at `address` (`ray://host:10001`, `host:6379` or "auto"), or start a local one."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address or None, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": _repo_root()}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RayEmbedder:
    """embed_files on Ray Data: `workers` actors, each with the extractor `extractor_kwargs` describes.

    After `plan(paths)` one pipeline embeds all of them, started at the first embed_files call and consumed
    chunk by chunk (the actors load their model once); without a plan each call runs a pipeline of its own."""

    def __init__(self, extractor_kwargs: dict[str, Any], spec: EmbeddingSpec, workers: int = 1,
                 cpus_per_worker: float = 1.0) -> None:
        self.extractor_kwargs, self.spec = dict(extractor_kwargs), spec
        self.workers, self.cpus_per_worker = int(workers), float(cpus_per_worker)
        self._planned: list[str] = []
        self._stream: Optional[Iterator[dict[str, np.ndarray]]] = None
        self._ready: dict[str, tuple] = {}

    def plan(self, paths: Sequence[Any]) -> "RayEmbedder":
        """The files later embed_files calls will ask for, in order (e.g. the chunks a resumed build still lacks)."""
        self._planned = [os.fspath(p) for p in paths]
        return self

    def _pipeline(self, paths: list[str], batch_size: int, describe: Any) -> Iterator[dict[str, np.ndarray]]:
        import ray

        blocks = max(1, min(len(paths) // max(1, batch_size), 64))
        ds = ray.data.from_items([{PATH: p, ROW: i} for i, p in enumerate(paths)], override_num_blocks=blocks)
        out = ds.map_batches(
            _EmbedActor, fn_constructor_kwargs={"extractor_kwargs": self.extractor_kwargs, "describe": describe},
            batch_size=batch_size, concurrency=self.workers, num_cpus=self.cpus_per_worker, batch_format="numpy",
        )
        return iter(out.iter_batches(batch_size=None, batch_format="numpy"))

    def _take(self, batches: Iterator[dict[str, np.ndarray]], paths: list[str], all_paths: list[str]) -> None:
        """Pull result batches into self._ready until every one of `paths` is there."""
        want = set(paths) - self._ready.keys()
        while want:
            b = next(batches)
            desc = b.get("descriptor")
            for j, r in enumerate(b[ROW]):
                p = all_paths[int(r)]
                self._ready[p] = (bool(b["ok"][j]), b["vector"][j], None if desc is None else desc[j], str(b["error"][j]))
                want.discard(p)

    def embed_files(self, sources: Sequence[Any], batch_size: int = 32, num_workers: int = 0,
                    progress: bool = True, describe: Any = None) -> EmbeddedFiles:
        """Same contract as FeatureExtractor.embed_files (paths only: workers read the files themselves)."""
        paths = [os.fspath(p) for p in sources]
        planned = bool(paths) and set(paths) <= set(self._planned)
        if planned:
            if self._stream is None:
                self._stream = self._pipeline(self._planned, batch_size, describe)
            self._take(self._stream, paths, self._planned)
        elif paths:
            self._take(self._pipeline(paths, batch_size, describe), paths, paths)
        rows = [self._ready.pop(p) for p in paths]
        ok = np.array([r[0] for r in rows], dtype=bool)
        kept = np.flatnonzero(ok).astype(np.int64)
        vecs = np.array([r[1] for r in rows], np.float32).reshape(len(rows), self.spec.dim)[ok]
        errors = {i: r[3] for i, r in enumerate(rows) if not r[0]}
        described = None
        if describe is not None:
            described = np.array([r[2] for r in rows if r[0]], np.float32) if len(kept) else np.empty((0, 0), np.float32)
        return EmbeddedFiles(vecs, kept, errors, described)


def chunks_done(out: str | os.PathLike) -> int:
    """How many leading chunks an unfinished build in partial_dir(out) has written (what a resume skips)."""
    from cbir.gallery.build import partial_dir

    tmp, c = partial_dir(out), 0
    while (tmp / f"shard-{c:05d}" / "done").exists():
        c += 1
    return c
