"""Inference runtimes for a backbone: torch (the reference and the fallback) and ONNX Runtime (the fast path).

The ONNX model is exported once per backbone and weights sha256, cached beside the converted weights,
and checked against torch on a fixed batch at export: a mismatch is an error, never a warning.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np
import torch

from .backbones import cache_dir

log = logging.getLogger(__name__)

ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4  # max abs difference to torch on the check batch (seen here: ~5e-6)


class RuntimeMismatchError(RuntimeError):
    """The exported ONNX model does not reproduce torch's output on the check batch."""


class Runtime(Protocol):
    name: str

    def __call__(self, batch: torch.Tensor) -> np.ndarray: ...


@dataclass(frozen=True)
class RuntimeInfo:
    """What ran the forward pass, for logs and reports."""

    name: str
    detail: str


class TorchRuntime:
    """The model itself, in channels_last memory layout (faster convolutions on CPU), under inference_mode."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.device = device
        self.model = model.eval().to(device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        out = self.model(batch.to(self.device, memory_format=torch.channels_last))
        return out.float().cpu().numpy().astype(np.float32, copy=False)


class OnnxRuntime:
    """ONNX Runtime on CPU with a fixed number of intra-op threads."""

    name = "onnx"

    def __init__(self, path: Path, threads: Optional[int] = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: spinning threads steal the CPU that decoding and preprocessing the
        # next images need (measured here: one upload's preprocessing 46 ms with spinning, 7 ms without).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        x = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0].astype(np.float32, copy=False)


def check_batch(input_size: tuple[int, int, int], n: int = 2, seed: int = 0) -> torch.Tensor:
    """The fixed batch every export is checked on (seeded, in the normalised input range)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *input_size), generator=g) * 2.0 - 1.0


def onnx_path(key: str) -> Path:
    return cache_dir() / "onnx" / f"{key}.onnx"


def export_onnx(model: torch.nn.Module, input_size: tuple[int, int, int], path: Path) -> Path:
    """Export with a dynamic batch axis, check against torch on `check_batch`, then move into place atomically."""
    import onnxruntime as ort

    model = model.eval().to("cpu", memory_format=torch.contiguous_format)
    x = check_batch(input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".onnx.part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with torch.inference_mode():
            expected = model(x).float().numpy()
        torch.onnx.export(
            model, (x,), str(tmp), input_names=["pixels"], output_names=["embedding"],
            dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=ONNX_OPSET, dynamo=False,
        )
        got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, {"pixels": x.numpy()})[0]
        diff = float(np.abs(got - expected).max())
        if not np.isfinite(diff) or diff > ONNX_TOLERANCE:
            raise RuntimeMismatchError(
                f"the ONNX export differs from torch by {diff:.3g} (> {ONNX_TOLERANCE:g}) on the check batch; "
                "use --runtime torch"
            )
        os.replace(tmp, path)
        log.info("exported %s (max |onnx - torch| = %.2g on the check batch)", path, diff)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


RuntimeFactory = Callable[..., Runtime]


def _make_torch(model: torch.nn.Module, device: torch.device, key: Optional[str], input_size, threads) -> Runtime:
    return TorchRuntime(model, device)


def _make_onnx(model: torch.nn.Module, device: torch.device, key: Optional[str], input_size, threads) -> Runtime:
    if device.type != "cpu":
        raise ValueError(f"the onnx runtime runs on the CPU; device {device} needs --runtime torch")
    if not onnx_available():
        raise ValueError("the onnx runtime needs onnxruntime: pip install onnxruntime (or use --runtime torch)")
    if key is None:
        raise ValueError("the onnx runtime caches exports by weights sha256; random-init models use --runtime torch")
    path = onnx_path(key)
    if not path.is_file():
        export_onnx(model, tuple(input_size), path)
    return OnnxRuntime(path, threads)


RUNTIMES: dict[str, RuntimeFactory] = {"torch": _make_torch, "onnx": _make_onnx}
RUNTIME_CHOICES = ("auto", *RUNTIMES)


def make_runtime(
    name: str,
    model: torch.nn.Module,
    device: torch.device,
    key: Optional[str],
    input_size: tuple[int, int, int],
    threads: Optional[int] = None,
) -> Runtime:
    """The runtime `name`; "auto" = ONNX Runtime for pretrained weights on the CPU when it exports cleanly, else torch.

    `key` names the weights (backbone + sha256; None for random init, which always runs on torch under auto).
    """
    if name not in RUNTIME_CHOICES:
        raise ValueError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIME_CHOICES)}")
    if name != "auto":
        return RUNTIMES[name](model, device, key, input_size, threads)
    if key is not None and device.type == "cpu" and onnx_available():
        try:
            return _make_onnx(model, device, key, input_size, threads)
        except (RuntimeMismatchError, OSError, RuntimeError) as e:  # export failed: torch is the fallback
            log.warning("ONNX Runtime unavailable for this model (%s); using torch", e)
    return _make_torch(model, device, key, input_size, threads)
