"""Post-training int8 quantisation of a backbone for OpenVINO: faster bulk embedding, at a measured cost.

An int8 model embeds images a little differently from the float one (Lite2: mean cosine 0.989 to the float
embedding on Apparel photos), so it is a property of the gallery's `EmbeddingSpec` (`quantization` and the
quantised file's sha256): a gallery built int8 is queried int8, and a float gallery refuses int8 queries.
The model is made once per backbone, weights sha256 and recipe by NNCF (`pip install nncf`), calibrated on
photos its caller gives (the committed CC0 demo photos: cbir.gallery.demo.calibration_photos), cached beside the
ONNX export, and checked against torch when it loads.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from cbir.embed.backbones import cache_dir, file_sha256
from cbir.index import l2_normalize
from cbir.embed.runtime import OpenVinoRuntime, RuntimeMismatchError, checked_export, openvino_available

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quantization:
    """A quantisation recipe: NNCF's default int8 PTQ, some convolutions kept in float, a fidelity floor."""

    name: str
    calibration: int = 290  # demo photos used to calibrate activation ranges (every other one of 580)
    float_convs: tuple[int, ...] = (0, -1)  # convolutions kept in float, by position: the stem and the head
    min_cosine: float = 0.95  # mean cosine to torch's float embedding on calibration photos, checked at load
    version: int = 1

    def tag(self) -> str:
        return f"{self.name}-v{self.version}-c{self.calibration}"


# Keeping the stem and head convolutions in float raised Lite2's mean cosine to the float embedding from 0.981 to
# 0.989 (128 Apparel photos; benchmarks/throughput.py, README "Embedding throughput").
QUANTIZATIONS: dict[str, Quantization] = {"int8": Quantization("int8")}
QUANTIZATION_CHOICES = tuple(QUANTIZATIONS)


def get_quantization(name: str) -> Quantization:
    if name not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {name!r}; choose one of {', '.join(QUANTIZATIONS)}")
    return QUANTIZATIONS[name]


def quantized_path(key: str, q: Quantization) -> Path:
    return cache_dir() / "openvino" / f"{key}-{q.tag()}.xml"


def quantize_onnx(onnx: Path, out: Path, batches: list[np.ndarray], q: Quantization) -> Path:
    """NNCF int8 PTQ of an ONNX model calibrated on `batches` ((1, C, H, W) each); written atomically as IR."""
    try:
        import nncf
    except ImportError as e:
        raise ValueError("int8 quantization needs NNCF: pip install nncf (or build the gallery without --quantize)") from e
    import openvino as ov

    model = ov.Core().read_model(str(onnx))
    convs = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    keep = sorted({convs[i] for i in q.float_convs}) if convs else []
    quantized = nncf.quantize(
        model, nncf.Dataset(batches), subset_size=len(batches),
        ignored_scope=nncf.IgnoredScope(names=keep) if keep else None,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".quantize-"))
    try:
        ov.save_model(quantized, str(tmp / out.name))
        os.replace(tmp / out.with_suffix(".bin").name, out.with_suffix(".bin"))
        os.replace(tmp / out.name, out)  # the .xml last: it is what marks the cache entry complete
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return out


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((l2_normalize(a) * l2_normalize(b)).sum(axis=1).mean())


def quantized_runtime(
    model: torch.nn.Module,
    device: torch.device,
    key: Optional[str],
    input_size: tuple[int, int, int],
    transform: Callable[[Any], torch.Tensor],
    quantization: str,
    threads: Optional[int] = None,
    *,
    calibration: Callable[[int], Sequence[Any]],
) -> tuple[OpenVinoRuntime, str]:
    """An OpenVINO runtime of the int8 model (made on first use) and the sha256 of its weights file;
    `calibration(n)` gives n photos (the same ones on every machine, or the cached model would differ).

    Raises ValueError when it cannot be made here and RuntimeMismatchError when it strays from torch's embedding.
    """
    q = get_quantization(quantization)
    if not openvino_available():
        raise ValueError("int8 models run on OpenVINO: pip install openvino")
    onnx = checked_export("openvino", model, device, key, input_size)
    path = quantized_path(str(key), q)
    if not path.is_file():  # decoding all calibration photos is for quantising only (seconds at every load)
        photos = calibration(q.calibration)
        log.warning("quantizing %s to int8 on %d photos (once; cached at %s)", key, len(photos), path)
        quantize_onnx(onnx, path, [transform(im).numpy()[None] for im in photos], q)
    runtime = OpenVinoRuntime(path, threads)
    runtime.name = f"openvino ({q.name})"
    batch = torch.stack([transform(im) for im in calibration(min(16, q.calibration))])
    with torch.inference_mode():
        expected = model.eval()(batch).float().numpy()
    cos = mean_cosine(runtime(batch), expected)
    if not cos >= q.min_cosine:
        raise RuntimeMismatchError(
            f"the {q.name} model's embeddings stray from the float model's (mean cosine {cos:.4f} < {q.min_cosine}); "
            f"delete {path} to quantize again, or build without --quantize"
        )
    log.info("int8 model %s: mean cosine %.4f to torch on %d calibration photos", path, cos, len(batch))
    return runtime, file_sha256(path.with_suffix(".bin"))
