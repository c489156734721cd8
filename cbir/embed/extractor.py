"""Image embeddings from a timm backbone with its classifier removed (EfficientNet-Lite2 -> 1280-d by default),
or from a `transformers` encoder named `hf:<repo or folder>` (cbir.embed.hf_encoders)."""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from cbir.embed.backbones import DEFAULT_MODEL, DEFAULT_SEED, WeightsUnavailableError, create_model
from cbir.embed.hf_encoders import is_hf_model, load_hf_encoder, text_families
from cbir.images import ImageError, load_image
from cbir.embed.preprocess import eval_transform, stack
from cbir.embed.runtime import make_runtime
from cbir.embed.spec import BackboneMismatchError, EmbeddedFiles, EmbeddingSpec, norm_cfg

__all__ = [
    "DEFAULT_MODEL", "DEFAULT_SEED", "WeightsUnavailableError", "BackboneMismatchError", "EmbeddingSpec",
    "FeatureExtractor", "EmbeddedFiles", "create_backbone", "resolve_device",
]

Describe = Callable[[Image.Image], np.ndarray]  # per-image extra computed from the same decode (colour descriptor)


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU; anything else is passed to torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def create_backbone(
    model_name: str = DEFAULT_MODEL,
    weights: str = "pretrained",
    seed: int = DEFAULT_SEED,
) -> tuple[torch.nn.Module, str]:
    """A headless timm model with weights from the backbone registry (cbir.embed.backbones); returns it and its source."""
    model, resolved = create_model(model_name, weights, seed)
    return model, resolved.source


class FeatureExtractor:
    """A registered backbone (cbir.embed.backbones) plus timm's own eval transform; turns images into float32 vectors."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        weights: str = "pretrained",
        device: str = "auto",
        seed: int = DEFAULT_SEED,
        runtime: str = "auto",
        threads: int | None = None,
        revision: str = "",
        quantization: str = "",
        calibration: Optional[Callable[[int], Sequence[Any]]] = None,
    ) -> None:
        """`runtime`: a cbir.embed.runtime name or "auto" (the fastest installed CPU runtime for pretrained weights).
        `quantization`: "" (float) or a cbir.embed.quantize recipe ("int8", OpenVINO only), calibrated on the photos
        `calibration(n)` gives (cbir.gallery.demo.calibration_photos)."""
        import timm.data

        hf = is_hf_model(model_name)  # transformers encoders bring their own forward and preprocessing
        if quantization and (hf or weights == "random" or runtime not in ("auto", "openvino")):
            raise ValueError(
                f"{quantization} quantization is for pretrained timm backbones on the openvino runtime "
                f"(got {model_name}, weights {weights}, runtime {runtime})"
            )
        if quantization and calibration is None:
            raise ValueError(f"{quantization} quantization needs calibration photos (cbir.gallery.demo.calibration_photos)")
        self.model, resolved = load_hf_encoder(model_name, weights, seed, revision) if hf else create_model(
            model_name, weights, seed
        )
        self.device = resolve_device(device)
        self.model.eval().to(self.device)
        if hf:  # auto = torch: ONNX exports of transformers encoders are not exercised here (--runtime onnx is)
            cfg, self.transform = self.model.data_config, self.model.transform
            key = f"hf-{self.model.family.name}-{resolved.sha256[:16]}" if resolved.sha256 else None
            input_size = tuple(self.transform(Image.new("RGB", (64, 64))).shape)
            runtime = "torch" if runtime == "auto" else runtime
        else:
            cfg = timm.data.resolve_data_config({}, model=self.model)
            key = f"{model_name}-{resolved.sha256[:16]}" if resolved.sha256 else None
            input_size = tuple(cfg["input_size"])
            self.transform = eval_transform(cfg)  # timm's eval transform, bit for bit, off torch's thread pool
        quantized_sha256 = ""
        if quantization:
            from cbir.embed.quantize import quantized_runtime

            self.runtime, quantized_sha256 = quantized_runtime(
                self.model, self.device, key, input_size, self.transform, quantization, threads, calibration=calibration
            )
        else:
            self.runtime = make_runtime(runtime, self.model, self.device, key, input_size, threads)
        dim = int(getattr(self.model, "head_hidden_size", None) or self.model.num_features)
        kind = "random" if weights == "random" else "pretrained"
        self.spec = EmbeddingSpec(
            model=model_name,
            weights=kind,
            dim=dim,
            data_config=norm_cfg(dict(cfg)),
            seed=seed if kind == "random" else None,
            weights_source=resolved.source,
            weights_sha256=resolved.sha256,
            revision=self.model.revision if hf else "",
            family=self.model.family.name if hf else "",
            quantization=quantization,
            quantized_sha256=quantized_sha256,
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    def embed_tensor(self, batch: torch.Tensor) -> np.ndarray:
        """Forward one preprocessed batch (B, 3, H, W) through the runtime and return (B, dim) float32."""
        return self.runtime(batch)

    @property
    def has_text(self) -> bool:
        """Whether the backbone has a text tower (hf: CLIP/SigLIP), so words can be embedded as queries."""
        return bool(getattr(self.model, "has_text", False))

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (N, dim) float32 in the image embedding's space; a clear error for image-only backbones."""
        if not self.has_text:
            raise ValueError(
                f"search by words needs a backbone with a text tower; this gallery's is {self.spec.describe()}. "
                f"Build the gallery with a transformers model of family {' or '.join(text_families())}, "
                "e.g. --model hf:patrickjohncyh/fashion-clip."
            )
        return self.model.embed_text(texts).float().cpu().numpy().astype(np.float32, copy=False)

    def embed_images(self, images: Sequence[Any], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed already-decoded images (PIL, arrays, paths or bytes: anything load_image takes)."""
        out = np.empty((len(images), self.spec.dim), dtype=np.float32)
        starts = range(0, len(images), batch_size)
        for s in tqdm(starts, desc="embedding", unit="batch", disable=not progress):
            chunk = images[s : s + batch_size]
            batch = stack([self.preprocess(load_image(im)) for im in chunk])
            out[s : s + len(chunk)] = self.embed_tensor(batch)
        return out

    def embed_image(self, image: Any) -> np.ndarray:
        """One query image -> (dim,) float32."""
        return self.embed_images([image], batch_size=1)[0]

    def embed_files(
        self,
        sources: Sequence[Any],
        batch_size: int = 32,
        num_workers: int = 0,
        progress: bool = True,
        describe: Optional[Describe] = None,
    ) -> EmbeddedFiles:
        """Embed many files (paths or bytes), each decoded once; `describe` runs on the same decoded image.

        `num_workers` 0 decodes in a background thread, one batch ahead of the forward pass; more decode in
        that many DataLoader processes. Unreadable images are skipped, not fatal: see EmbeddedFiles.
        """
        dataset = _DecodeDataset(list(sources), self.transform, describe)
        if num_workers > 0:
            batches: Iterable = torch.utils.data.DataLoader(
                dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False,
                collate_fn=_collate_skipping_errors, multiprocessing_context=_worker_context(),
            )
        else:
            batches = _prefetch(
                _collate_skipping_errors([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))])
                for s in range(0, len(dataset), batch_size)
            )
        out = np.empty((len(sources), self.spec.dim), dtype=np.float32)
        extra: dict[int, np.ndarray] = {}
        kept: list[int] = []
        errors: dict[int, str] = {}
        with tqdm(total=len(sources), desc="embedding", unit="img", disable=not progress) as bar:
            for idx, batch, errs, described in batches:
                errors.update(errs)
                if idx:
                    out[idx] = self.embed_tensor(batch)
                    kept.extend(idx)
                    extra.update(zip(idx, described))
                bar.update(len(idx) + len(errs))
        keep = np.asarray(kept, dtype=np.int64)
        rows = np.stack([extra[i] for i in kept]) if describe is not None and kept else None
        return EmbeddedFiles(out[keep], keep, errors, rows)


def _prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Yield `items`, produced `depth` ahead in a background thread (decoding overlaps the forward pass, which
    releases the GIL); the producer's exceptions are re-raised here, and it stops when the consumer does."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: tuple[Any, Optional[BaseException]]) -> bool:
        """Queue `entry` unless the consumer has gone (then never block on a full queue)."""
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put((done, e))

    worker = threading.Thread(target=produce, name="cbir-decode", daemon=True)
    worker.start()
    try:
        while True:
            item, err = q.get()
            if item is done:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _worker_context() -> Optional[str]:
    """Decode workers start from a clean forkserver, not a fork of this process: a fork copies the state of every
    thread here (gRPC's for a Milvus store, OpenVINO's, the app's), and the suite's fork beside them crashed."""
    import multiprocessing

    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else None


class _DecodeDataset(torch.utils.data.Dataset):
    """Decode + preprocess (+ describe) one image per item; errors name the offending source."""

    def __init__(self, sources: list[Any], transform: Any, describe: Optional[Describe] = None) -> None:
        self.sources = sources
        self.transform = transform
        self.describe = describe

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None, Any]:
        try:
            image = load_image(self.sources[i])
            return i, self.transform(image), None, None if self.describe is None else self.describe(image)
        except ImageError as e:
            return i, None, str(e), None


def _collate_skipping_errors(items: list) -> tuple[list[int], torch.Tensor | None, dict[int, str], list[Any]]:
    good = [(i, t, d) for i, t, err, d in items if err is None]
    errors = {i: err for i, _, err, _ in items if err is not None}
    batch = stack([t for _, t, _ in good]) if good else None
    return [i for i, _, _ in good], batch, errors, [d for _, _, d in good]
