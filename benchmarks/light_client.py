#!/usr/bin/env python
"""The served app's speed as a client sees it, with a light client: raw HTTP to Gradio's REST API (one keep-alive
httpx connection per client: upload, POST /gradio_api/call/search, read the answer's event stream).

gradio_client spends more CPU per call than the server (a new TLS context and client per request), and on a
2-core machine that CPU is taken from the server; this client costs about a millisecond. Phases: one client, one
photo after another (median round trip); then `--clients` at once (searches per second, failures); then, with the
server idle, the forward pass alone on the same photos in this process (same runtime, one thread: the server's
per-call setting), so its share of a search is measured in the same run. Example (docs/benchmarks.md):

    nice -n 0 python -m benchmarks.light_client --requests 300 --clients 16 --out results/light-client.json
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PHOTOS = sorted((ROOT / "tests" / "data" / "cc0").glob("*.jpg")) + sorted((ROOT / "demo" / "examples").glob("*.jpg"))
FILE_META = {"_type": "gradio.FileData"}
# /search's inputs after the photo, in order, with the API's defaults (method None = the server's default)
SEARCH_DEFAULTS = {"method": None, "task": "type", "k": 10, "exclude": -1, "types": [], "colours": [],
                   "positives": [], "negatives": [], "box": None, "dedup": True, "text": "", "min_score": None}


class LightClient:
    """One keep-alive HTTP connection to a Gradio app; `search` = upload + call + answer, as a browser does."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        import httpx

        self.base = url.rstrip("/") + "/gradio_api"
        self.http = httpx.Client(timeout=timeout)
        # One session per client, as a browser and gradio_client keep: without it Gradio builds a new session state
        # (the config of every block of the page) for each call, a fifth of the server's CPU per search here.
        self.session = uuid.uuid4().hex[:11]

    def upload(self, photo: bytes, name: str) -> str:
        r = self.http.post(f"{self.base}/upload", files={"files": (name, photo)})
        r.raise_for_status()
        return r.json()[0]

    def call(self, endpoint: str, data: list) -> object:
        """POST the call, then read its event stream to the `complete` (or `error`) event; the answer's data."""
        r = self.http.post(f"{self.base}/call/{endpoint}", json={"data": data, "session_hash": self.session})
        r.raise_for_status()
        event_id = r.json()["event_id"]
        event = None
        with self.http.stream("GET", f"{self.base}/call/{endpoint}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event in ("complete", "error"):
                    payload = json.loads(line[6:])
                    if event == "error":
                        raise RuntimeError(f"/{endpoint} failed: {payload}")
                    return payload
        raise RuntimeError(f"/{endpoint}: the event stream ended without an answer")

    def search(self, photo: bytes, name: str = "query.jpg", **options: object) -> dict:
        """/search with the API's defaults for the options not given (the simple REST call takes every input)."""
        path = self.upload(photo, name)
        args = {**SEARCH_DEFAULTS, **options}
        return self.call("search", [{"path": path, "meta": FILE_META}, *args.values()])[0]

    def close(self) -> None:
        self.http.close()


@dataclass
class Phase:
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> dict:
        s = sorted(self.seconds)
        pct = lambda q: round(1000 * s[min(len(s) - 1, int(q * len(s)))], 1) if s else None  # noqa: E731
        return {"requests": len(s) + len(self.failures), "failed": len(self.failures), "median_ms": pct(0.5),
                "p95_ms": pct(0.95), "per_second": round(len(s) / self.wall, 2) if self.wall else None,
                "failures": self.failures[:5]}


def run_phase(url: str, photos: list[tuple[str, bytes]], clients: int, requests: int, k: int) -> Phase:
    """`requests` searches shared by `clients` threads, each on its own connection, photos taken in turn."""
    phase = Phase()

    def loop(offset: int) -> None:
        client = LightClient(url)
        try:
            for i in range(offset, requests, clients):
                name, data = photos[i % len(photos)]
                t0 = time.perf_counter()
                try:
                    answer = client.search(data, name, k=k)
                    if len(answer["results"]) != k:
                        raise RuntimeError(f"{len(answer['results'])} results, not {k}")
                    with phase.lock:
                        phase.seconds.append(time.perf_counter() - t0)
                except Exception as e:  # any failure is counted and reported, never hidden
                    with phase.lock:
                        phase.failures.append(f"{type(e).__name__}: {e}"[:300])
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.wall = time.perf_counter() - t0
    return phase


def forward_ms(gallery: Optional[str], photos: list[tuple[str, bytes]], repeats: int, threads: Optional[int] = 1) -> dict:
    """The forward pass alone (preprocessed tensor in, embedding out) and the whole embed (preprocess + forward) per
    photo, in this process with `threads` threads (1: the server's per-call setting; None: leave them)."""
    import numpy as np

    from cbir.embed.runtime import limit_threads
    from cbir.gallery.dataset import Gallery
    from cbir.gallery.demo import DEMO_GALLERY
    from cbir.images import load_image
    from cbir.search.loading import extractor_for

    if threads:
        limit_threads(threads)
    spec = Gallery.load(gallery or str(DEMO_GALLERY)).spec
    extractor, _ = extractor_for(spec)
    images = [load_image(data) for _, data in photos]
    tensors = [extractor.preprocess(im)[None] for im in images]
    extractor.embed_image(images[0])  # warm-up (compilation)
    whole, bare = [], []
    for _ in range(repeats):
        for im, x in zip(images, tensors):
            t0 = time.perf_counter()
            extractor.embed_image(im)
            whole.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            extractor.embed_tensor(x)
            bare.append(time.perf_counter() - t0)
    return {"runtime": extractor.runtime.name, "embed_median_ms": round(1000 * float(np.median(whole)), 1),
            "forward_median_ms": round(1000 * float(np.median(bare)), 1)}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running app (default: start app.py on a free port, with the options after --)")
    p.add_argument("--photos", type=Path, nargs="*", default=DEFAULT_PHOTOS, help="query photos (default: the "
                   "held-out CC0 test photos and the demo's examples)")
    p.add_argument("--requests", type=int, default=200, help="searches per phase (default: %(default)s)")
    p.add_argument("--clients", type=int, default=16, help="clients of the load phase (default: %(default)s)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--forward-repeats", type=int, default=10, help="passes over the photos for the forward "
                   "timing (0 = skip it)")
    p.add_argument("--gallery", help="the gallery the server serves, for the forward timing (default: the demo)")
    p.add_argument("--start-timeout", type=float, default=300)
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args, app_args = p.parse_known_args(argv)
    app_args = [a for a in app_args if a != "--"]
    photos = [(ph.name, ph.read_bytes()) for ph in args.photos]
    if not photos:
        raise SystemExit("no query photos")
    proc = None
    url = args.url
    if url is None:
        import tempfile

        from benchmarks.soak import start_server

        log = Path(tempfile.mkdtemp(prefix="light-client-")) / "app.log"
        proc, url = start_server(app_args, log, args.start_timeout)
        print(f"app started at {url} (log {log})", flush=True)
    try:
        _wait_ready(url, photos[0], args.start_timeout)
        run_phase(url, photos, 1, args.warmup, args.k)
        one = run_phase(url, photos, 1, args.requests, args.k).summary()
        print(f"1 client: {one}", flush=True)
        many = run_phase(url, photos, args.clients, args.requests, args.k).summary()
        print(f"{args.clients} clients: {many}", flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    report = {"url": url if args.url else "started app.py " + " ".join(app_args), "photos": len(photos),
              "one_client": one, f"clients_{args.clients}": many}
    if args.forward_repeats:
        fwd = forward_ms(args.gallery, photos, args.forward_repeats)
        report["forward"] = fwd
        if one["median_ms"]:
            report["forward_share_of_one_client_median"] = round(fwd["forward_median_ms"] / one["median_ms"], 3)
        print(f"forward: {fwd}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 1 if one["failed"] or many["failed"] else 0


def _wait_ready(url: str, photo: tuple[str, bytes], timeout: float) -> None:
    """The first search answers once the app has loaded its model (the port opens before)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            LightClient(url).search(photo[1], photo[0])
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


if __name__ == "__main__":
    raise SystemExit(main())
