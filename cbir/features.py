"""Image embeddings from a timm backbone with its classifier removed (EfficientNet-Lite2 -> 1280-d by default),
or from a `transformers` encoder named `hf:<repo or folder>` (cbir.hf_encoders)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .backbones import DEFAULT_MODEL, DEFAULT_SEED, WeightsUnavailableError, create_model
from .hf_encoders import is_hf_model, load_hf_encoder, text_families
from .images import ImageError, load_image
from .runtime import make_runtime

__all__ = [
    "DEFAULT_MODEL", "DEFAULT_SEED", "WeightsUnavailableError", "BackboneMismatchError", "EmbeddingSpec",
    "FeatureExtractor", "create_backbone", "resolve_device",
]

class BackboneMismatchError(ValueError):
    """A gallery embedded with one backbone/preprocessing is searched with another."""


@dataclass(frozen=True)
class EmbeddingSpec:
    """What made a set of embeddings: the timm model, its weights and its preprocessing."""

    model: str
    weights: str  # "pretrained" or "random"
    dim: int
    data_config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # the init seed when weights == "random"
    weights_source: str = ""  # where the weights came from: pip:<package>, hub:<repo>, file:<name>
    dtype: str = "float32"
    weights_sha256: str = ""  # sha256 of the weights file ("" for random init and older galleries)
    revision: str = ""  # hf: backbones: the Hub commit the weights came from ("" for local folders and timm)
    family: str = ""  # hf: backbones: clip, siglip, dinov2, vit (cbir.hf_encoders); "" for timm

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EmbeddingSpec":
        missing = [k for k in ("model", "weights", "dim") if k not in d]
        if missing or not isinstance(d.get("dim"), int) or d["dim"] <= 0:
            problem = f"lacks {', '.join(missing)}" if missing else f"has dim {d.get('dim')!r}, not a positive integer"
            raise BackboneMismatchError(
                f"the embedding spec {problem}: it does not describe how the embeddings were made; "
                "rebuild the gallery with scripts/build_index.py"
            )
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        cfg = dict(known.get("data_config") or {})
        known["data_config"] = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in cfg.items()}
        return cls(**known)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EmbeddingSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))

    @property
    def is_random(self) -> bool:
        return self.weights == "random"

    def describe(self) -> str:
        w = f"random init (seed {self.seed})" if self.is_random else f"pretrained {self.weights_source or ''}".strip()
        family = f"{self.family} " if self.family else ""
        rev = f"@{self.revision[:10]}" if self.revision else ""
        return f"{family}{self.model}{rev}, {w}, {self.dim}-d"

    def check_compatible(self, other: "EmbeddingSpec", allow_weights_mismatch: bool = False) -> None:
        """Raise BackboneMismatchError unless `other` embeds images the same way as `self`."""
        problems = []
        if self.model != other.model:
            problems.append(f"model {self.model!r} vs {other.model!r}")
        if self.dim != other.dim:
            problems.append(f"dimension {self.dim} vs {other.dim}")
        if _norm_cfg(self.data_config) != _norm_cfg(other.data_config):
            problems.append(f"preprocessing {self.data_config} vs {other.data_config}")
        if not allow_weights_mismatch and (self.weights, self.seed) != (other.weights, other.seed):
            problems.append(f"weights {self.describe()} vs {other.describe()}")
        elif not allow_weights_mismatch and self.weights_sha256 and other.weights_sha256 and (
            self.weights_sha256 != other.weights_sha256
        ):
            problems.append(f"weights file sha256 {self.weights_sha256[:12]}... vs {other.weights_sha256[:12]}...")
        elif not allow_weights_mismatch and self.revision and other.revision and self.revision != other.revision:
            problems.append(f"revision {self.revision} vs {other.revision}")
        if problems:
            raise BackboneMismatchError(
                "the gallery was embedded differently from this feature extractor: " + "; ".join(problems)
            )


def _norm_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in cfg.items()}


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
    """A headless timm model with weights from the backbone registry (cbir.backbones); returns it and its source."""
    model, resolved = create_model(model_name, weights, seed)
    return model, resolved.source


class FeatureExtractor:
    """A registered backbone (cbir.backbones) plus timm's own eval transform; turns images into float32 vectors."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        weights: str = "pretrained",
        device: str = "auto",
        seed: int = DEFAULT_SEED,
        runtime: str = "auto",
        threads: int | None = None,
        revision: str = "",
    ) -> None:
        """`runtime`: "torch", "onnx" or "auto" (ONNX Runtime for pretrained weights on the CPU; cbir.runtime)."""
        import timm.data

        hf = is_hf_model(model_name)  # transformers encoders bring their own forward and preprocessing
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
            self.transform = timm.data.create_transform(**cfg, is_training=False)
        self.runtime = make_runtime(runtime, self.model, self.device, key, input_size, threads)
        dim = int(getattr(self.model, "head_hidden_size", None) or self.model.num_features)
        kind = "random" if weights == "random" else "pretrained"
        self.spec = EmbeddingSpec(
            model=model_name,
            weights=kind,
            dim=dim,
            data_config=_norm_cfg(dict(cfg)),
            seed=seed if kind == "random" else None,
            weights_source=resolved.source,
            weights_sha256=resolved.sha256,
            revision=self.model.revision if hf else "",
            family=self.model.family.name if hf else "",
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
            batch = torch.stack([self.preprocess(load_image(im)) for im in chunk])
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
    ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        """Embed many files (paths or bytes) with a DataLoader, decoding in `num_workers` processes.

        Unreadable images are skipped, not fatal: returns (vectors, kept indices, {index: error}).
        """
        loader = torch.utils.data.DataLoader(
            _DecodeDataset(list(sources), self.transform),
            batch_size=batch_size,
            num_workers=num_workers,
            shuffle=False,
            collate_fn=_collate_skipping_errors,
        )
        out = np.empty((len(sources), self.spec.dim), dtype=np.float32)
        kept: list[int] = []
        errors: dict[int, str] = {}
        with tqdm(total=len(sources), desc="embedding", unit="img", disable=not progress) as bar:
            for idx, batch, errs in loader:
                errors.update(errs)
                if idx:
                    out[idx] = self.embed_tensor(batch)
                    kept.extend(idx)
                bar.update(len(idx) + len(errs))
        keep = np.asarray(kept, dtype=np.int64)
        return out[keep], keep, errors


class _DecodeDataset(torch.utils.data.Dataset):
    """Decode + preprocess one image per item; errors name the offending source."""

    def __init__(self, sources: list[Any], transform: Any) -> None:
        self.sources = sources
        self.transform = transform

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return i, self.transform(load_image(self.sources[i])), None
        except ImageError as e:
            return i, None, str(e)


def _collate_skipping_errors(items: list) -> tuple[list[int], torch.Tensor | None, dict[int, str]]:
    good = [(i, t) for i, t, err in items if err is None]
    errors = {i: err for i, _, err in items if err is not None}
    batch = torch.stack([t for _, t in good]) if good else None
    return [i for i, _ in good], batch, errors
