"""Measuring helpers shared by every benchmark: timings, memory, machine description, CPU share, targets, JSON."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

RANDOM_INIT_NOTE = (
    "Without an extractor the embedding sections use VGG16 with random-init weights: speed, memory and recall "
    "numbers do not depend on the weights."
)
MB = 1024.0 * 1024.0

Log = Callable[[str], None]


def log_stderr(msg: str) -> None:
    """Progress goes to stderr so stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p95, mean, min and max in milliseconds of repeated timings given in seconds."""
    a = np.asarray(seconds, dtype=np.float64) * 1000.0
    if a.size == 0:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan"), "repeats": 0}
    return {
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "repeats": int(a.size),
    }


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def blas_info() -> list[dict[str, Any]]:
    """Loaded BLAS/OpenMP libraries and their thread counts (threadpoolctl), [] when unavailable."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "prefix", "filepath", "version", "num_threads", "threading_layer")
    return [{k: d.get(k) for k in keys if k in d} for d in threadpool_info()]


def machine_info() -> dict[str, Any]:
    """Cores, CPU, RAM, library versions and the BLAS numpy uses: what the timings depend on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "numpy": np.__version__,
    }
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
        with open("/proc/meminfo") as f:
            kb = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal:"))
        info["ram_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    if hasattr(os, "getloadavg"):
        info["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    for mod in ("torch", "sklearn", "faiss", "timm"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except ImportError:
            info[mod] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    info["blas"] = blas_info()
    numpy_blas = [d for d in info["blas"] if d.get("user_api") == "blas" and "numpy" in str(d.get("filepath", ""))]
    info["numpy_blas"] = numpy_blas or [d for d in info["blas"] if d.get("user_api") == "blas"][:1]
    return info


class CpuMeter:
    """Wall time of a span, CPU this process (and its reaped children) used, and CPU every other
    process used: a benchmark section shared with other work shows up as other_share > 0."""

    def __enter__(self) -> "CpuMeter":
        self._t, self._busy, self._own = time.perf_counter(), machine_busy_s(), own_cpu_s()
        return self

    def __exit__(self, *exc: Any) -> None:
        wall = time.perf_counter() - self._t
        own = own_cpu_s() - self._own
        busy = machine_busy_s()
        other = None if busy is None or self._busy is None else max(0.0, busy - self._busy - own)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.result = {
            "wall_s": wall,
            "own_cpu_s": own,
            "other_cpu_s": other,
            "other_share": None if other is None or wall <= 0 else other / (wall * cores),
        }


def machine_busy_s() -> Optional[float]:
    """CPU-seconds all processes have used since boot (Linux /proc/stat), None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU-seconds of this process plus its finished children (DataLoader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def target(name: str, value: float, target: str, met: bool, unit: str = "ms") -> dict[str, Any]:
    return {"check": name, "value": float(value), "unit": unit, "target": target, "met": bool(met)}


def jsonable(x: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays converted, NaN kept (Python's json writes NaN)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def write_json(report: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
