"""Benchmarks of the cbir library (not used by the app): latency, approximate search, vector stores,
embedding throughput, the served app (light_client, soak), what a shopper sees. `run_benchmark` runs the speed suite;
`render_markdown` prints its report. Entry points: benchmark.py, light_client.py, soak.py, throughput.py, stores.py,
store_methods.py, edits.py, shopper.py, unlabelled.py."""

from .config import AnnSet, BenchmarkConfig, GallerySize
from .measure import log_stderr, write_json
from .report import render_markdown
from .run import run_benchmark

__all__ = ["AnnSet", "BenchmarkConfig", "GallerySize", "log_stderr", "render_markdown", "run_benchmark", "write_json"]
