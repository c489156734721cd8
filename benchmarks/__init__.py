"""Benchmarks of the cbir library (not used by the app): latency, approximate search, vector stores,
load, embedding throughput. `run_benchmark` runs them all; `render_markdown` prints the report."""

from .config import AnnSet, BenchmarkConfig, GallerySize
from .load import check_local_url, load_test
from .measure import log_stderr, write_json
from .report import load_test_markdown, render_markdown
from .run import run_benchmark

__all__ = [
    "AnnSet",
    "BenchmarkConfig",
    "GallerySize",
    "check_local_url",
    "load_test",
    "load_test_markdown",
    "log_stderr",
    "render_markdown",
    "run_benchmark",
    "write_json",
]
