"""`transformers` image encoders as backbones: `hf:<Hub repo id or local folder>` (CLIP, SigLIP, DINOv2, ViT).

The model loads with `AutoModel`, its preprocessing with `AutoImageProcessor`, and (CLIP, SigLIP) its text
tower's tokenizer with `AutoTokenizer`. A registry of families says which output is the embedding:

- `clip`, `siglip`: `get_image_features` (the projected image embedding, in the space shared with text);
  text queries use `get_text_features`.
- `dinov2`, `vit`: the CLS token of the last hidden state (layer-normed; DINOv2's `pooler_output`). No text tower.

Hub models are fetched with `huggingface_hub.snapshot_download` (weights as safetensors when the repo has them),
so the resolved commit is known and recorded; `trust_remote_code` is never enabled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from PIL import Image

from cbir.embed.backbones import Weights, WeightsUnavailableError, file_sha256

log = logging.getLogger(__name__)

HF_PREFIX = "hf:"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CONFIG_FILES = ["*.json", "*.txt", "*.model", "*.tiktoken"]  # config, processor, tokenizer (vocab/merges/spm)
_PROCESSOR_KEYS = (
    "image_processor_type", "do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale",
    "rescale_factor", "do_normalize", "image_mean", "image_std", "do_convert_rgb",
)


def is_hf_model(name: str) -> bool:
    """True for `hf:<repo id or folder>` backbone names (transformers encoders), False for timm names."""
    return str(name).startswith(HF_PREFIX)


def hf_source(name: str) -> str:
    """The repo id or folder of an `hf:` name."""
    src = str(name)[len(HF_PREFIX):].strip()
    if not src:
        raise ValueError("an hf: backbone needs a Hub repo id or a local folder, e.g. hf:patrickjohncyh/fashion-clip")
    return src


# ---------------------------------------------------------------------------------------------
# Families: which output is the embedding, its width, and the text tower if there is one
# ---------------------------------------------------------------------------------------------


def _pooled(out: Any) -> torch.Tensor:
    """transformers 5 returns a ModelOutput from get_*_features (the embedding is its pooler_output); 4.x a tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _cls_token(model: Any, pixel_values: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=pixel_values).last_hidden_state[:, 0]


def _image_features(model: Any, pixel_values: torch.Tensor) -> torch.Tensor:
    return _pooled(model.get_image_features(pixel_values=pixel_values))


def _text_features(padding: str | bool) -> Callable[[Any, Any, list[str]], torch.Tensor]:
    def embed(model: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
        limit = int(getattr(model.config.text_config, "max_position_embeddings", 77))
        max_length = min(int(getattr(tokenizer, "model_max_length", limit) or limit), limit)
        enc = tokenizer(texts, padding=padding, truncation=True, max_length=max_length, return_tensors="pt")
        device = next(model.parameters()).device
        return _pooled(model.get_text_features(**{k: v.to(device) for k, v in enc.items() if k != "token_type_ids"}))

    return embed


@dataclass(frozen=True)
class Family:
    """A kind of transformers encoder: its `model_type`s, how to read its image (and text) embedding, its width."""

    name: str
    model_types: tuple[str, ...]
    embedding: str  # said in the docs and the spec's description
    image: Callable[[Any, torch.Tensor], torch.Tensor]
    dim: Callable[[Any], int]
    text: Optional[Callable[[Any, Any, list[str]], torch.Tensor]] = None


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    for t in family.model_types:
        if t in _FAMILIES:
            raise ValueError(f"model type {t!r} already belongs to family {_FAMILIES[t].name!r}")
        _FAMILIES[t] = family
    return family


def list_families() -> list[str]:
    return sorted({f.name for f in _FAMILIES.values()})


def text_families() -> list[str]:
    """Families with a text tower (search by words)."""
    return sorted({f.name for f in _FAMILIES.values() if f.text is not None})


def family_for(model_type: str) -> Family:
    if model_type not in _FAMILIES:
        raise ValueError(
            f"transformers model type {model_type!r} is not supported as a backbone; supported: "
            f"{', '.join(sorted(_FAMILIES))} (families {', '.join(list_families())})"
        )
    return _FAMILIES[model_type]


register_family(Family("clip", ("clip",), "get_image_features (projected)", _image_features,
                       lambda c: int(c.projection_dim), _text_features(True)))
# SigLIP's text tower was trained on max-length padded input: pad the same way
register_family(Family("siglip", ("siglip",), "get_image_features (attention-pooled)", _image_features,
                       lambda c: int(c.vision_config.hidden_size), _text_features("max_length")))
register_family(Family("dinov2", ("dinov2", "dinov2_with_registers"), "CLS token (layer-normed)", _cls_token,
                       lambda c: int(c.hidden_size)))
register_family(Family("vit", ("vit",), "CLS token (layer-normed)", _cls_token, lambda c: int(c.hidden_size)))


# ---------------------------------------------------------------------------------------------
# Fetching: a local folder as is, a Hub repo as a snapshot at a resolved commit
# ---------------------------------------------------------------------------------------------


def _snapshot(repo_id: str, revision: Optional[str], allow_patterns: list[str]) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=repo_id, revision=revision or None, allow_patterns=allow_patterns))


def resolve_folder(source: str, revision: str = "") -> tuple[Path, str]:
    """(local folder holding the model, revision): a folder as given (revision ""), or a Hub snapshot and its commit."""
    path = Path(source).expanduser()
    if path.is_dir():
        if revision:
            raise ValueError(f"--revision applies to Hub repo ids, not to the local folder {source}")
        return path.resolve(), ""
    if os.path.isabs(source) or source.startswith(".") or source.count("/") > 1:
        raise FileNotFoundError(f"model folder {source} does not exist (and is not a Hub repo id of the form user/name)")
    try:
        folder = _snapshot(source, revision, _CONFIG_FILES + ["*.safetensors"])
        if not any(folder.glob("*.safetensors")):  # older repos ship only pytorch_model.bin
            folder = _snapshot(source, revision, _CONFIG_FILES + ["pytorch_model*.bin"])
    except Exception as e:  # offline, unknown repo, gated, unknown revision
        raise WeightsUnavailableError(
            f"could not download the transformers model {source!r}"
            f"{f' at revision {revision!r}' if revision else ''} from the Hub ({type(e).__name__}: {str(e)[:200]}). "
            "Offline? Download it where the Hub is reachable and pass the folder: --model hf:/path/to/folder."
        ) from None
    commit = folder.name if _COMMIT.match(folder.name) else (revision or "")
    return folder, commit


def weights_digest(folder: Path) -> tuple[str, str]:
    """(sha256 of the weight files, their names): one file's own sha256, or the sha256 of the sorted per-file digests."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise WeightsUnavailableError(f"{folder} has no model weights (*.safetensors or pytorch_model*.bin)")
    digests = [file_sha256(f) for f in files]
    if len(digests) == 1:
        return digests[0], files[0].name
    return hashlib.sha256("".join(digests).encode()).hexdigest(), ",".join(f.name for f in files)


# ---------------------------------------------------------------------------------------------
# The encoder module
# ---------------------------------------------------------------------------------------------


class HFImageTransform:
    """PIL image -> (3, H, W) float tensor with the model's own image processor (picklable for DataLoader workers)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]


def processor_config(processor: Any) -> dict[str, Any]:
    """The preprocessing settings that change embeddings, JSON-normalised (tuples -> lists) for the spec."""
    d = processor.to_dict()
    return json.loads(json.dumps({k: d[k] for k in _PROCESSOR_KEYS if k in d}, default=str))


class HFEncoder(torch.nn.Module):
    """A transformers model as an image backbone: forward(pixel_values) -> (B, dim); embed_text for CLIP/SigLIP."""

    def __init__(self, model: Any, family: Family, processor: Any, tokenizer: Any = None, revision: str = "") -> None:
        super().__init__()
        self.model = model
        self.family = family
        self.num_features = family.dim(model.config)
        self.transform = HFImageTransform(processor)
        self.data_config = processor_config(processor)
        self.tokenizer = tokenizer
        self.revision = revision

    @property
    def has_text(self) -> bool:
        return self.family.text is not None and self.tokenizer is not None

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.family.image(self.model, pixel_values)

    @torch.inference_mode()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, dim) text embeddings in the image embedding's space (CLIP/SigLIP only)."""
        if not self.has_text:
            raise ValueError(f"the {self.family.name} encoder has no text tower")
        return self.family.text(self.model, self.tokenizer, list(texts))


def load_hf_encoder(name: str, weights: str = "pretrained", seed: int = 0, revision: str = "") -> tuple[HFEncoder, Weights]:
    """Load `hf:<repo or folder>`: pretrained weights (strict: missing tensors are an error) or a seeded random init."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

    if weights not in ("pretrained", "random"):
        raise ValueError(
            f"a weights file ({weights}) applies to timm backbones; for {name} pass the model's folder: hf:/path/to/folder"
        )
    folder, commit = resolve_folder(hf_source(name), revision)
    config = AutoConfig.from_pretrained(folder)
    family = family_for(config.model_type)
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModel.from_config(config)
        resolved = Weights(None, f"random-init seed={seed}")
    else:
        model, info = AutoModel.from_pretrained(folder, output_loading_info=True)
        missing = [k for k in info.get("missing_keys", ()) if "position_ids" not in k]
        if missing or info.get("mismatched_keys"):
            raise WeightsUnavailableError(
                f"{name}: the weights do not fit the {config.model_type} model "
                f"(missing {sorted(missing)[:3]}, mismatched {list(info.get('mismatched_keys', []))[:3]})"
            )
        sha, files = weights_digest(folder)
        where = f"hub:{hf_source(name)}" if commit else f"folder:{folder.name}"  # the commit is spec.revision
        resolved = Weights(None, f"{where} ({files})", sha)
    processor = AutoImageProcessor.from_pretrained(folder)
    tokenizer = None
    if family.text is not None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except Exception as e:  # a model folder saved without its tokenizer: images work, words do not
            log.warning("%s: no tokenizer (%s); search by words is off", name, e)
    return HFEncoder(model.eval(), family, processor, tokenizer, commit), resolved
