"""Benchmarks of the cbir library (not used by the app): latency, approximate search, vector stores,
load, embedding throughput, soak. `run_benchmark` runs the speed suite; `render_markdown`
prints its report. Entry points: benchmark.py, load_test.py, soak.py, throughput.py, stores.py, store_methods.py."""

from .config import AnnSet, BenchmarkConfig, GallerySize
from .load import check_local_url, load_test
from .measure import log_stderr, write_json
from .report import load_test_markdown, render_markdown
from .run import run_benchmark

__all__ = ["AnnSet", "BenchmarkConfig", "GallerySize", "check_local_url", "load_test", "load_test_markdown", "log_stderr",
           "render_markdown", "run_benchmark", "write_json"]
