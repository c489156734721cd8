#!/usr/bin/env python
"""Soak test: N gradio_client clients on 127.0.0.1 send a bounded mix of /search, /compare, /random and bad
inputs to the app; reports failures, latency percentiles, sustained searches per second and the server's RSS.

Starts `app.py` itself (extra app options after `--`) or uses a running app (`--url`, `--server-pid` for RSS).
Bounded: it stops after `--requests` requests or `--max-seconds`, whichever comes first, and stops the server
it started. Example (the README's numbers):

    flock /tmp/cbir-heavy.lock python benchmarks/soak.py --clients 16 --requests 2000 --out results/soak.json \
        -- --concurrency 2 --threads 1
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# What Gradio says when a handler raised something other than gr.Error: the message this project never sends.
GENERIC = ("upstream Gradio app has raised an exception", "Traceback", "Error:")
# gradio_client opens a new httpx client per call, and each one loads the CA bundle into a fresh SSL context
# (~90 ms of client CPU per /search here, on the same 2 cores as the server). One shared context, which httpx
# accepts as `verify`, keeps certificate checks and makes the clients cost ~10 ms per request.
SSL_CONTEXT = ssl.create_default_context()


@dataclass
class Outcome:
    kind: str  # search, compare, random, bad
    ok: bool
    seconds: float
    message: str = ""


@dataclass
class Totals:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, o: Outcome) -> None:
        with self.lock:
            self.outcomes.append(o)


# --- inputs -------------------------------------------------------------------------------------------------


def bad_inputs(folder: Path, good: Path) -> list[tuple[str, Path, tuple]]:
    """(name, file, extra /search args) for requests that must each end in a clear error."""
    data = good.read_bytes()
    jpeg = io.BytesIO()
    Image.open(good).convert("RGB").save(jpeg, format="JPEG")
    png16 = io.BytesIO()
    Image.new("1", (16, 16)).save(png16, format="PNG")
    bomb = bytearray(png16.getvalue())
    bomb[16:24] = struct.pack(">II", 20000, 20000)
    bomb[29:33] = struct.pack(">I", zlib.crc32(bytes(bomb[12:29])) & 0xFFFFFFFF)
    tiny = io.BytesIO()
    Image.new("RGB", (1, 1)).save(tiny, format="PNG")
    files = {
        "cut-in-app0.jpg": b"\xff\xd8\xff\xe0" + bytes(range(7, 47)),
        "truncated.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 3],
        "bit-flipped.png": bytes(b ^ 0x5A if 40 < i < 400 else b for i, b in enumerate(data)),
        "empty.jpg": b"",
        "notes.txt": b"this is not an image\n",
        "one-pixel.png": tiny.getvalue(),
        "bomb.png": bytes(bomb),
    }
    out = []
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content)
        out.append((name, path, ("cosine", "type", 5, -1)))
    out.append(("k=0", good, ("cosine", "type", 0, -1)))
    out.append(("unknown-method", good, ("no-such-method", "type", 5, -1)))
    return out


def fetch_queries(url: str, folder: Path, n: int, images: Path | None) -> list[Path]:
    """Query files: real photos from `images` (recursively) if given, else gallery images through /random."""
    if images:
        found = sorted(p for p in images.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
        if not found:
            raise SystemExit(f"no images under {images}")
        picked = random.Random(0).sample(found, min(n, len(found)))
        return [Path(shutil.copy(p, folder / f"query-{i}{p.suffix.lower()}")) for i, p in enumerate(picked)]
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=str(folder), ssl_verify=SSL_CONTEXT)
    return [Path(client.predict(api_name="/random")[0]) for _ in range(n)]


# --- the server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app_args: list[str], log_path: Path, timeout: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port), *app_args]
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with status {proc.returncode}; see {log_path}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"the app did not start within {timeout:.0f} s; see {log_path}")


def rss_mb(pid: int | None) -> float | None:
    """Resident set size of a process (and its children are not counted), from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines() if pid else []
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:")), None)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used so far, from /proc (None if unknown)."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- the clients --------------------------------------------------------------------------------------------


def client_loop(
    url: str, plan: list[str], queries: list[Path], bad: list[tuple], totals: Totals, deadline: float, seed: int
) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False, download_files=False, ssl_verify=SSL_CONTEXT)
    rnd = random.Random(seed)
    for kind in plan:
        if time.monotonic() > deadline:
            return
        t0 = time.perf_counter()
        try:
            if kind == "search":
                res = client.predict(handle_file(str(rnd.choice(queries))), "cosine", "type", 10, -1,
                                     api_name="/search")
                ok = len(res["results"]) == 10
                msg = "" if ok else f"{len(res['results'])} results"
            elif kind == "compare":
                a, b = rnd.choice(queries), rnd.choice(queries)
                score = client.predict(handle_file(str(a)), handle_file(str(b)), "cosine", "type", api_name="/compare")
                ok, msg = isinstance(score, float) and np.isfinite(score), ""
            elif kind == "random":
                _, label, index = client.predict(api_name="/random")
                ok, msg = isinstance(index, int) and bool(label), ""
            else:
                name, path, args = rnd.choice(bad)
                try:
                    client.predict(handle_file(str(path)), *args, api_name="/search")
                    ok, msg = False, f"{name}: accepted"
                except AppError as e:
                    text = e.message or ""
                    ok = bool(text) and not any(g in text for g in GENERIC)
                    msg = f"{name}: {text}"
            totals.add(Outcome(kind, ok, time.perf_counter() - t0, msg))
        except Exception as e:  # a good request that failed, or a bad one that failed unclearly
            totals.add(Outcome(kind, False, time.perf_counter() - t0, f"{type(e).__name__}: {e}"[:300]))


def make_plans(n_requests: int, clients: int, mix: dict[str, float], seed: int) -> list[list[str]]:
    """The request kinds, shuffled with a seed and dealt round-robin to the clients."""
    kinds = [k for k, share in mix.items() for _ in range(round(share * n_requests))]
    kinds += ["search"] * (n_requests - len(kinds))
    random.Random(seed).shuffle(kinds)
    return [kinds[i::clients] for i in range(clients)]


def percentile_ms(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)) * 1000, 1) if xs else float("nan")


def summarise(totals: Totals, wall: float, rss: dict, config: dict) -> dict:
    by_kind: dict[str, dict] = {}
    for kind in ("search", "compare", "random", "bad"):
        os_ = [o for o in totals.outcomes if o.kind == kind]
        secs = [o.seconds for o in os_]
        failures = [o.message for o in os_ if not o.ok]
        by_kind[kind] = {
            "requests": len(os_),
            "failed": len(failures),
            "p50_ms": percentile_ms(secs, 50),
            "p95_ms": percentile_ms(secs, 95),
            "failures": sorted(set(failures))[:10],
        }
    good = [o for o in totals.outcomes if o.kind != "bad"]
    searches = sum(1 for o in totals.outcomes if o.kind == "search" and o.ok)
    return {
        "config": config,
        "requests": len(totals.outcomes),
        "wall_seconds": round(wall, 1),
        "good_failed": sum(1 for o in good if not o.ok),
        "bad_unclear": by_kind["bad"]["failed"],
        "searches_per_second": round(searches / wall, 2) if wall else 0.0,
        "requests_per_second": round(len(totals.outcomes) / wall, 2) if wall else 0.0,
        "by_endpoint": by_kind,
        "bad_messages": sorted({o.message for o in totals.outcomes if o.kind == "bad" and o.ok})[:20],
        "rss_mb": rss,
    }


def markdown(r: dict) -> str:
    rows = [
        "| Endpoint | Requests | Failed | p50 ms | p95 ms |",
        "|---|---|---|---|---|",
    ]
    for kind, v in r["by_endpoint"].items():
        rows.append(f"| {'bad input (/search)' if kind == 'bad' else '/' + kind} | {v['requests']} | {v['failed']} | "
                    f"{v['p50_ms']} | {v['p95_ms']} |")
    rss = r["rss_mb"]
    rows.append("")
    rows.append(f"{r['requests']} requests in {r['wall_seconds']} s from {r['config']['clients']} clients: "
                f"{r['searches_per_second']} /search per second sustained ({r['requests_per_second']} requests/s); "
                f"good requests failed: {r['good_failed']}; bad inputs without a clear error: {r['bad_unclear']}; "
                f"server RSS {rss.get('start')} MB after warm-up, {rss.get('end')} MB at the end "
                f"(max {rss.get('max')} MB).")
    cpu = r.get("cpu_ms_per_request") or {}
    if cpu:
        rows.append(f"CPU per request: server {cpu.get('server')} ms, clients {cpu.get('clients')} ms.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    app_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, app_args = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running app on 127.0.0.1 (default: start app.py with the options after --)")
    p.add_argument("--server-pid", type=int, help="pid of the app behind --url, for its RSS")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=2000, help="total requests, warm-up excluded (default 2000)")
    p.add_argument("--warmup", type=int, default=32, help="search requests before measuring (default 32)")
    p.add_argument("--max-seconds", type=float, default=900, help="stop after this long in any case (default 900)")
    p.add_argument("--mix", default="search=0.7,compare=0.1,random=0.1,bad=0.1",
                   help="request shares (default: %(default)s)")
    p.add_argument("--images", type=Path, help="query photos (a folder; default: gallery images via /random)")
    p.add_argument("--queries", type=int, default=24, help="distinct query images (default 24)")
    p.add_argument("--rss-growth-mb", type=float, default=200, help="allowed RSS growth start->end (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--server-log", type=Path, default=Path(tempfile.gettempdir()) / "cbir-soak-server.log",
                   help="the started app's output (default: %(default)s)")
    p.add_argument("--out", type=Path, help="write the JSON report here (and the markdown beside it)")
    args = p.parse_args(argv)
    mix = {k: float(v) for k, v in (kv.split("=") for kv in args.mix.split(","))}
    if set(mix) - {"search", "compare", "random", "bad"} or abs(sum(mix.values()) - 1) > 1e-6:
        raise SystemExit(f"--mix: kinds search, compare, random, bad with shares summing to 1; got {args.mix}")

    work = Path(tempfile.mkdtemp(prefix="cbir-soak-"))
    proc = None
    try:
        if args.url:
            if urlparse(args.url).hostname not in LOCAL_HOSTS:
                raise SystemExit("--url must be on 127.0.0.1: this script loads a server, it only runs locally")
            url, pid = args.url, args.server_pid
        else:
            proc, url = start_server(app_args, args.server_log, timeout=300)
            pid = proc.pid
        print(f"app at {url} (pid {pid}); server log {args.server_log}", flush=True)
        queries = fetch_queries(url, work, args.queries, args.images)
        bad = bad_inputs(work, queries[0])

        warm = Totals()
        client_loop(url, ["search"] * args.warmup, queries, bad, warm, time.monotonic() + 300, args.seed)
        rss = {"start": rss_mb(pid)}
        samples = [rss["start"]]
        cpu0 = (cpu_seconds(pid), own_cpu_seconds())

        totals = Totals()
        deadline = time.monotonic() + args.max_seconds
        plans = make_plans(args.requests, args.clients, mix, args.seed)
        threads = [
            threading.Thread(target=client_loop, args=(url, plan, queries, bad, totals, deadline, args.seed + i + 1))
            for i, plan in enumerate(plans)
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(2)
            samples.append(rss_mb(pid))
            done = len(totals.outcomes)
            print(f"  {done}/{args.requests} requests, {time.perf_counter() - t0:.0f} s", end="\r", flush=True)
        wall = time.perf_counter() - t0
        cpu1 = (cpu_seconds(pid), own_cpu_seconds())
        print()
        rss["end"] = rss_mb(pid)
        valid = [s for s in samples if s is not None]
        rss = {k: (round(v, 1) if v is not None else None) for k, v in rss.items()}
        rss["max"] = round(max(valid), 1) if valid else None
        config = {"clients": args.clients, "requests": args.requests, "mix": mix, "app_args": app_args,
                  "images": str(args.images) if args.images else "gallery images via /random",
                  "cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()}
        report = summarise(totals, wall, rss, config)
        n = max(report["requests"], 1)
        report["cpu_ms_per_request"] = {  # where the 2 cores went: the app, and the clients on the same machine
            "server": round((cpu1[0] - cpu0[0]) * 1000 / n, 1) if None not in (cpu0[0], cpu1[0]) else None,
            "clients": round((cpu1[1] - cpu0[1]) * 1000 / n, 1),
        }
        growth = (rss["end"] - rss["start"]) if rss.get("end") and rss.get("start") else 0.0
        report["rss_growth_mb"] = round(growth, 1)
        report["passed"] = (
            report["good_failed"] == 0 and report["bad_unclear"] == 0 and growth <= args.rss_growth_mb
            and report["requests"] == args.requests
        )
        md = markdown(report)
        print(md)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
            args.out.with_suffix(".md").write_text(md + "\n")
        for kind, v in report["by_endpoint"].items():
            for f in v["failures"]:
                print(f"  failure ({kind}): {f}")
        return 0 if report["passed"] else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
