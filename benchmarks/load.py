"""Load test of a running app on 127.0.0.1: N search calls from C concurrent gradio_client clients."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Sequence
from urllib.parse import urlsplit

from .config import BenchmarkConfig
from .measure import Log, log_stderr, summarize_ms

LOCAL_HOST = "127.0.0.1"


def check_local_url(url: str) -> str:
    """`url` if it points at 127.0.0.1 over http(s); anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname != LOCAL_HOST:
        raise ValueError(f"load tests only run against an app on {LOCAL_HOST} (http://{LOCAL_HOST}:PORT), not {url!r}")
    return url


def load_test(
    url: str,
    image_paths: Sequence[str | os.PathLike],
    n_requests: int = 200,
    concurrency: int = 8,
    time_limit_s: float = 300.0,
    request_timeout_s: float = 60.0,
    method: str = "cosine",
    task: str = "type",
    k: int = 10,
    api_name: str = "/search",
    log: Log = log_stderr,
) -> dict[str, Any]:
    """`n_requests` calls of the app's search endpoint from `concurrency` gradio_client clients.

    Bounded: no request starts after `time_limit_s`, none waits longer than `request_timeout_s`.
    One untimed warm-up call comes first."""
    check_local_url(url)
    if not image_paths:
        raise ValueError("the load test needs at least one image file to upload")
    from gradio_client import Client, handle_file

    def make_client() -> Any:
        return Client(url, verbose=False, download_files=False, analytics_enabled=False)

    def call(client: Any, i: int) -> Any:
        job = client.submit(handle_file(str(image_paths[i % len(image_paths)])), method, task, k, api_name=api_name)
        result = job.result(timeout=request_timeout_s)
        if isinstance(result, dict) and "results" in result and not result["results"]:
            raise ValueError("the app answered with no results")
        return result

    t0 = time.perf_counter()
    warm_client = make_client()
    t1 = time.perf_counter()
    warm_result = call(warm_client, 0)
    warmup_ms = (time.perf_counter() - t1) * 1000.0
    lock = threading.Lock()
    counter = iter(range(n_requests))
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + time_limit_s
    started = [0]

    def worker() -> None:
        try:
            client = make_client()
        except Exception as e:  # a client that cannot connect fails the requests it would have sent
            with lock:
                errors.append(f"client: {type(e).__name__}: {e}")
            return
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
                if i is not None:
                    started[0] += 1
            if i is None:
                return
            t = time.perf_counter()
            try:
                call(client, i + 1)
                ok = True
            except Exception as e:
                ok = False
                msg = f"{type(e).__name__}: {str(e)[:200]}"
            dt = time.perf_counter() - t
            with lock:
                if ok:
                    latencies.append(dt)
                else:
                    errors.append(msg)

    log(f"load test: {n_requests} requests, {concurrency} clients -> {url}{api_name}")
    t_run = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=max(0.0, deadline - time.perf_counter()) + request_timeout_s + 5)
    wall = time.perf_counter() - t_run
    stats = summarize_ms(latencies)
    return {
        "url": url,
        "api_name": api_name,
        "args": {"method": method, "task": task, "k": k},
        "requests": n_requests,
        "concurrency": concurrency,
        "sent": started[0],
        "ok": len(latencies),
        "failed": len(errors),
        "not_sent": n_requests - started[0],
        "errors": sorted(set(errors))[:5],
        "wall_s": wall,
        "requests_per_s": len(latencies) / wall if wall > 0 else float("nan"),
        "warmup_ms": warmup_ms,
        "client_connect_ms": (t1 - t0) * 1000.0,
        "result_type": type(warm_result).__name__,
        "results_per_response": len(warm_result["results"])
        if isinstance(warm_result, dict) and "results" in warm_result
        else None,
        **stats,
    }


def load_section(cfg: BenchmarkConfig, images: list[str], log: Log) -> dict[str, Any]:
    if not cfg.load_url:
        return {"skipped": "no --load-url given (the app is not part of this run)"}
    try:
        return load_test(cfg.load_url, images, cfg.load_requests, cfg.load_concurrency, cfg.load_time_limit_s, log=log)
    except Exception as e:  # the benchmark must finish without the app; the report says what went wrong
        return {"skipped": f"load test failed to run: {type(e).__name__}: {e}"}
