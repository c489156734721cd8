"""Inference runtimes for a backbone: torch (the reference and the fallback), ONNX Runtime and OpenVINO.

The ONNX model is exported once per backbone and weights sha256, cached beside the converted weights,
and checked against torch on a fixed batch at export: a mismatch is an error, never a warning. OpenVINO
compiles that same file and is checked against torch the same way when it loads it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Protocol

import numpy as np
import torch

from cbir.embed.backbones import cache_dir

log = logging.getLogger(__name__)

ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4  # max abs difference to torch on the check batch (seen here: ~5e-6)


def limit_threads(threads: int) -> None:
    """Run torch and numpy's BLAS with `threads` CPU threads per call (the runtimes take torch's count when made).

    BLAS's default pool (every core) makes a search's small products (1 x N scores, k x k dedup) ~8x costlier in CPU
    than one thread does, and under load its threads fight the model's for the cores.
    """
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(threads))
    threadpool_limits(int(threads), user_api="blas")  # process-wide, kept (not used as a context manager)


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


class OpenVinoRuntime:
    """OpenVINO on CPU: the fastest runtime here for bulk embedding (a batch split over parallel streams) and for
    single queries (a latency-compiled model). Static shapes run ~2x faster than a dynamic batch axis, so each
    (mode, batch size) is compiled once, on first use, and kept; concurrent callers share a pool of requests."""

    name = "openvino"
    BULK = 8  # batches at least this large run on the throughput model, split over its streams

    def __init__(self, path: Path, threads: Optional[int] = None) -> None:
        import openvino as ov

        self.core = ov.Core()
        self.threads = int(threads or torch.get_num_threads())
        self.model = self.core.read_model(str(path))
        self.input_name = self.model.inputs[0].get_any_name()
        self.path = path
        self._compiled: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()
        self._free: dict[tuple[str, int], list[Any]] = {}  # idle infer requests (they own large buffers)
        self.streams = max(1, int(self._compile("THROUGHPUT", self.BULK).get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))

    def _compile(self, hint: str, n: int) -> Any:
        with self._lock:
            if (hint, n) not in self._compiled:
                model = self.model.clone()
                shape = list(self.model.inputs[0].get_partial_shape().get_min_shape())
                model.reshape({self.input_name: [n, *shape[1:]]})
                self._compiled[hint, n] = self.core.compile_model(
                    model, "CPU", {"PERFORMANCE_HINT": hint, "INFERENCE_NUM_THREADS": self.threads,
                                   "INFERENCE_PRECISION_HINT": "f32"},
                )
            return self._compiled[hint, n]

    @contextmanager
    def _requests(self, hint: str, n: int, count: int = 1) -> Iterator[list[Any]]:
        """`count` infer requests for (hint, n), from a pool: as many exist as calls ever ran at once (each owns
        its buffers), never one per thread that happened to call."""
        key = (hint, n)
        with self._lock:
            free = self._free.setdefault(key, [])
            taken, self._free[key] = free[:count], free[count:]
        compiled = self._compile(hint, n)
        taken += [compiled.create_infer_request() for _ in range(count - len(taken))]
        try:
            yield taken
        finally:
            with self._lock:
                self._free[key].extend(taken)

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        x = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        if len(x) < self.BULK or self.streams == 1:
            with self._requests("LATENCY", len(x)) as (req,):
                return np.array(req.infer({0: x})[0], dtype=np.float32)
        n = len(x)
        per = -(-n // self.streams)
        per = -(-per // self.BULK) * self.BULK  # a few static shapes only: a short batch is zero-padded, not recompiled
        if per * self.streams > n:
            x = np.concatenate([x, np.zeros((per * self.streams - n, *x.shape[1:]), np.float32)])
        with self._requests("THROUGHPUT", per, self.streams) as requests:
            for i, req in enumerate(requests):
                req.start_async({0: x[i * per : (i + 1) * per]})
            for req in requests:
                req.wait()
            return np.concatenate([np.array(r.get_output_tensor(0).data, dtype=np.float32) for r in requests])[:n]


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
    return _importable("onnxruntime")


def openvino_available() -> bool:
    return _importable("openvino")


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


RuntimeFactory = Callable[..., Runtime]


def _make_torch(model: torch.nn.Module, device: torch.device, key: Optional[str], input_size, threads) -> Runtime:
    return TorchRuntime(model, device)


def checked_export(name: str, model: torch.nn.Module, device: torch.device, key: Optional[str], input_size) -> Path:
    """The cached ONNX export every non-torch runtime reads (made and checked against torch on first use)."""
    if device.type != "cpu":
        raise ValueError(f"the {name} runtime runs on the CPU; device {device} needs --runtime torch")
    if not onnx_available():  # the export is checked with ONNX Runtime
        raise ValueError(f"the {name} runtime needs onnxruntime: pip install onnxruntime (or use --runtime torch)")
    if key is None:
        raise ValueError(f"the {name} runtime caches exports by weights sha256; random-init models use --runtime torch")
    path = onnx_path(key)
    if not path.is_file():
        export_onnx(model, tuple(input_size), path)
    return path


def _make_onnx(model: torch.nn.Module, device: torch.device, key: Optional[str], input_size, threads) -> Runtime:
    return OnnxRuntime(checked_export("onnx", model, device, key, input_size), threads)


def _make_openvino(model: torch.nn.Module, device: torch.device, key: Optional[str], input_size, threads) -> Runtime:
    if not openvino_available():
        raise ValueError("the openvino runtime needs OpenVINO: pip install openvino (or use --runtime onnx)")
    runtime = OpenVinoRuntime(checked_export("openvino", model, device, key, input_size), threads)
    check_against_torch(runtime, model, tuple(input_size))
    return runtime


def check_against_torch(runtime: Runtime, model: torch.nn.Module, input_size: tuple[int, int, int]) -> float:
    """Max |runtime - torch| on `check_batch` (bulk and single paths); above ONNX_TOLERANCE is an error."""
    x = check_batch(input_size, n=OpenVinoRuntime.BULK)
    with torch.inference_mode():
        expected = model.eval()(x.contiguous()).float().numpy()
    got = np.concatenate([runtime(x), runtime(x[:1])])
    diff = float(np.abs(got - np.concatenate([expected, expected[:1]])).max())
    if not np.isfinite(diff) or diff > ONNX_TOLERANCE:
        raise RuntimeMismatchError(
            f"the {runtime.name} runtime differs from torch by {diff:.3g} (> {ONNX_TOLERANCE:g}) on the check batch; "
            "use --runtime torch"
        )
    return diff


RUNTIMES: dict[str, RuntimeFactory] = {"torch": _make_torch, "onnx": _make_onnx, "openvino": _make_openvino}
RUNTIME_CHOICES = ("auto", *RUNTIMES)
# What "auto" tries on the CPU, fastest first (measured here with Lite2: benchmarks/throughput.py, README).
AUTO_ORDER: tuple[tuple[str, Callable[[], bool]], ...] = (("openvino", openvino_available), ("onnx", onnx_available))


def make_runtime(
    name: str,
    model: torch.nn.Module,
    device: torch.device,
    key: Optional[str],
    input_size: tuple[int, int, int],
    threads: Optional[int] = None,
) -> Runtime:
    """The runtime `name`; "auto" = the fastest installed CPU runtime for pretrained weights (AUTO_ORDER) that loads
    and matches torch, else torch.

    `key` names the weights (backbone + sha256; None for random init, which always runs on torch under auto).
    """
    if name not in RUNTIME_CHOICES:
        raise ValueError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIME_CHOICES)}")
    if name != "auto":
        return RUNTIMES[name](model, device, key, input_size, threads)
    if key is not None and device.type == "cpu":
        for candidate, available in AUTO_ORDER:
            if not available():
                continue
            try:
                return RUNTIMES[candidate](model, device, key, input_size, threads)
            except (RuntimeMismatchError, OSError, RuntimeError) as e:  # export or compile failed: try the next
                log.warning("%s runtime unavailable for this model (%s); trying the next", candidate, e)
    return _make_torch(model, device, key, input_size, threads)
