"""What made a set of embeddings (`EmbeddingSpec`): model, weights, preprocessing; every gallery, store and
classifier carries one, and a query is embedded only the same way."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np

__all__ = ["BackboneMismatchError", "EmbeddedFiles", "EmbeddingSpec"]


class EmbeddedFiles(NamedTuple):
    """What `embed_files` returns: vectors of the readable files, their indices, {index: reason} for the rest,
    and the rows of `describe` for the kept files (None without `describe`)."""

    vectors: np.ndarray
    kept: np.ndarray
    errors: dict[int, str]
    described: Optional[np.ndarray] = None

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
    family: str = ""  # hf: backbones: clip, siglip, dinov2, vit (cbir.embed.hf_encoders); "" for timm
    quantization: str = ""  # "" (float) or a cbir.embed.quantize recipe such as "int8": it changes the embeddings
    quantized_sha256: str = ""  # sha256 of the quantised model's weights file

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
        q = f", {self.quantization}-quantized" if self.quantization else ""
        return f"{family}{self.model}{rev}, {w}{q}, {self.dim}-d"

    def check_compatible(self, other: "EmbeddingSpec", allow_weights_mismatch: bool = False) -> None:
        """Raise BackboneMismatchError unless `other` embeds images the same way as `self`."""
        problems = []
        if self.model != other.model:
            problems.append(f"model {self.model!r} vs {other.model!r}")
        if self.dim != other.dim:
            problems.append(f"dimension {self.dim} vs {other.dim}")
        if norm_cfg(self.data_config) != norm_cfg(other.data_config):
            problems.append(f"preprocessing {self.data_config} vs {other.data_config}")
        if not allow_weights_mismatch and (self.weights, self.seed) != (other.weights, other.seed):
            problems.append(f"weights {self.describe()} vs {other.describe()}")
        elif not allow_weights_mismatch and self.weights_sha256 and other.weights_sha256 and (
            self.weights_sha256 != other.weights_sha256
        ):
            problems.append(f"weights file sha256 {self.weights_sha256[:12]}... vs {other.weights_sha256[:12]}...")
        elif not allow_weights_mismatch and self.revision and other.revision and self.revision != other.revision:
            problems.append(f"revision {self.revision} vs {other.revision}")
        if not allow_weights_mismatch and self.quantization != other.quantization:
            problems.append(f"quantization {self.quantization or 'none'} vs {other.quantization or 'none'}")
        elif not allow_weights_mismatch and self.quantized_sha256 and other.quantized_sha256 and (
            self.quantized_sha256 != other.quantized_sha256
        ):
            problems.append(
                f"quantized model sha256 {self.quantized_sha256[:12]}... vs {other.quantized_sha256[:12]}... "
                "(another NNCF/OpenVINO version or machine quantized it: rebuild the gallery here)"
            )
        if problems:
            raise BackboneMismatchError(
                "the gallery was embedded differently from this feature extractor: " + "; ".join(problems)
            )


def norm_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in cfg.items()}
