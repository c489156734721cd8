"""Vector stores at scale: build time, memory, p50/p95 single-query latency and recall@k against
exact numpy search, with and without a type filter, for cosine and for logistic regression as
maximum inner product over stored [g, g^2], on every backend given (numpy, faiss, milvus-lite).

    python -m benchmarks.stores --n 1000000 --dim 256 --stores numpy faiss:hnsw "milvus:/tmp/s.db?index=HNSW"

A store `milvus-server[?options]` is a real Milvus standalone server (the `milvus` package's binary) that this
run starts on 127.0.0.1 with free ports, in --server-dir, and stops at the end:

    python -m benchmarks.stores --n 100000 --dim 1280 --stores "milvus-server?index=FLAT" "milvus-server?index=HNSW"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from cbir.stores import open_store, parse_store_uri
from cbir.stores.methods import lr_gallery_vectors

from .data import synthetic_vectors
from .measure import MB, log_stderr, machine_info, summarize_ms

TYPES = ("dress", "pants", "shirt", "shoes", "shorts")


def tree_rss_bytes(pid: Optional[int] = None) -> int:
    """Resident memory of a process and all its descendants (milvus-lite runs a server child process)."""
    pid = os.getpid() if pid is None else pid
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            total += next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmRSS:"))
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(tree_rss_bytes(int(c)) for c in f.read().split())
    except (OSError, StopIteration):
        pass
    return total


def lr_weights(dim: int, seed: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
    """A logistic regression's (c, v1, v2) for timing: random weights of realistic sign and size."""
    rng = np.random.default_rng(seed)
    return float(rng.normal()), (-np.abs(rng.normal(size=dim)) / dim).astype(np.float32), (rng.normal(size=dim) / dim).astype(np.float32)


def lr_queries(q: np.ndarray, v1: np.ndarray, v2: np.ndarray) -> np.ndarray:
    """[q * (v2 - 2 v1), v1]: the query side of the logit as an inner product with [g, g^2]."""
    return np.hstack([q * (v2 - 2.0 * v1), np.broadcast_to(v1, q.shape)]).astype(np.float32)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum()) for a, b in zip(found, truth)])) if k else float("nan")


def exact_truth(x: np.ndarray, labels: dict, queries: np.ndarray, k: int, metric: str) -> dict[str, np.ndarray]:
    """Exact top-k ids (numpy store) without and with the type filter."""
    exact = open_store("numpy", "truth", x.shape[1], metric)
    exact.upsert(np.arange(len(x)), x, labels)
    return {name: exact.search(queries, k, f)[0] for name, f in (("all", None), ("type filter", {"type": [TYPES[0]]}))}


def timed_queries(store: Any, queries: np.ndarray, k: int, filters: Optional[dict]) -> tuple[np.ndarray, dict]:
    """One query at a time (what the app does); the first call is a warm-up and not timed."""
    store.search(queries[:1], k, filters)
    ids, times = [], []
    for q in queries:
        t = time.perf_counter()
        ids.append(store.search(q, k, filters)[0][0])
        times.append(time.perf_counter() - t)
    return np.stack(ids), summarize_ms(times)


def wait_for_index(store: Any, timeout_s: float = 3600.0, poll_s: float = 2.0) -> dict[str, Any]:
    """Block until Milvus has indexed every flushed row, then reload, so the build time includes the index build and
    the timed searches run on the built index; returns the index state and the segment sizes for the report."""
    client, name = store.client, store.collection
    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    for index in client.list_indexes(name):
        while True:
            info = client.describe_index(name, index)
            if int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0)):
                break
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(f"Milvus index {index!r} not built after {timeout_s:.0f} s: {info}")
            time.sleep(poll_s)
    client.release_collection(name)
    client.load_collection(name)
    segments = client.list_persistent_segments(name) if hasattr(client, "list_persistent_segments") else []
    return {**{k: info.get(k) for k in ("index_type", "state", "indexed_rows", "total_rows")},
            "segments": [int(sg.num_rows) for sg in segments], "wait_s": time.perf_counter() - t0}


def run_store(
    uri: str, space: str, metric: str, x: np.ndarray, labels: dict, queries: np.ndarray, truth: dict, k: int,
    batch: int, time_limit_s: float,
) -> dict[str, Any]:
    """Build one store from `x` in batches (stopping at `time_limit_s`), then query it with and without the filter."""
    u = parse_store_uri(uri)
    db = Path(u.location)
    if u.backend == "milvus" and db.exists():  # start empty: milvus-lite keeps a file or a folder there
        shutil.rmtree(db) if db.is_dir() else db.unlink()
    rss0 = tree_rss_bytes()
    t0 = time.perf_counter()
    store = open_store(uri, space, x.shape[1], metric)
    written = 0
    for s in range(0, len(x), batch):
        store.upsert(np.arange(s, min(s + batch, len(x))), x[s : s + batch], {c: v[s : s + batch] for c, v in labels.items()})
        written = min(s + batch, len(x))
        if time.perf_counter() - t0 > time_limit_s:
            break
    store.flush()
    insert_s = time.perf_counter() - t0
    index = wait_for_index(store) if u.backend == "milvus" else None
    build_s = time.perf_counter() - t0
    row: dict[str, Any] = {
        "store": uri, "space": space, "metric": metric, "n": written, "dim": int(x.shape[1]), "build_s": build_s,
        "insert_s": insert_s, **({"index": index} if index else {}),
        "complete": written == len(x), "rss_growth_mb": (tree_rss_bytes() - rss0) / MB,
    }
    if u.backend == "milvus" and not u.location.startswith("http"):
        files = [db] if db.is_file() else [f for f in db.rglob("*") if f.is_file()]
        row["disk_mb"] = sum(f.stat().st_size for f in files) / MB
    if not row["complete"]:  # stopped at the time limit: recall against exact search over the rows written
        truth = exact_truth(x[:written], {c: v[:written] for c, v in labels.items()}, queries, k, metric)
    for name, filters in (("all", None), ("type filter", {"type": [TYPES[0]]})):
        ids, stats = timed_queries(store, queries, k, filters)
        row[name] = {**stats, f"recall@{k}": recall(ids, truth[name])}
    store.close()
    del store
    return row


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--stores", nargs="+", default=["numpy", "faiss:hnsw", "milvus:/tmp/cbir-stores.db?index=HNSW"])
    p.add_argument("--methods", nargs="+", default=["cosine", "logreg"], choices=["cosine", "logreg"])
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, default=10_000, help="rows per upsert")
    p.add_argument("--time-limit", type=float, default=240.0, help="seconds of inserting per store before stopping")
    p.add_argument("--out", help="append the JSON rows here")
    p.add_argument("--server-dir", default="/tmp/cbir-milvus-server", help="data folder of a milvus-server store")
    args = p.parse_args(argv)
    server = None
    if any(s.startswith(SERVER) for s in args.stores):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from milvus_server import MilvusTestServer

        shutil.rmtree(args.server_dir, ignore_errors=True)
        server = MilvusTestServer(Path(args.server_dir)).start()
    try:
        return _run(args, argv, server)
    finally:
        if server is not None:
            server.stop()


SERVER = "milvus-server"


def server_uri(uri: str, server: Any) -> str:
    """`milvus-server?index=HNSW` -> `milvus://127.0.0.1:PORT?index=HNSW` on the server this run started."""
    if not uri.startswith(SERVER):
        return uri
    options = uri[len(SERVER) :].lstrip("?")
    if "collection=" not in options:  # a collection of its own: never upsert into another row's (FLAT) collection
        options = "&".join(filter(None, [options, f"collection=b{uuid.uuid4().hex[:10]}"]))
    return f"milvus://127.0.0.1:{server.port}?{options}"


def _run(args: argparse.Namespace, argv: Optional[Sequence[str]], server: Any) -> int:

    log_stderr(f"data: {args.n:,} x {args.dim} clustered vectors + {args.queries} held-out queries")
    full = synthetic_vectors(args.n + args.queries, args.dim, "clustered", seed=0)
    x, queries = full[: args.n], full[args.n :]
    rng = np.random.default_rng(1)
    types = np.asarray(TYPES, dtype=object)[rng.integers(len(TYPES), size=args.n)]
    labels = {"type": types, "colour": np.full(args.n, "black", dtype=object), "label": types}
    rows = []
    for method in args.methods:
        if method == "logreg":
            c, v1, v2 = lr_weights(args.dim)
            data, qv, space, metric = lr_gallery_vectors(x, None), lr_queries(queries, v1, v2), "logreg", "ip"
        else:
            data, qv, space, metric = x, queries, "cosine", "cosine"
        truth = exact_truth(data, labels, qv, args.k, metric)
        for uri in args.stores:
            log_stderr(f"{method}: {uri} on {args.n:,} x {data.shape[1]}")
            row = run_store(server_uri(uri, server), space, metric, data, labels, qv, truth, args.k, args.batch,
                            args.time_limit)
            row["method"], row["store"] = method, uri
            rows.append(row)
            log_stderr(json.dumps(row))
        del data
    command = "python -m benchmarks.stores " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    report = {"command": command, "machine": machine_info(), "rows": rows}
    print(markdown(report))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(report) + "\n")
    return 0


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| Method | Store | N x dim stored | Build s | Memory MB | p50 / p95 ms | recall@10 | p50 / p95 ms (type filter) | recall@10 (filter) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        a, f = r["all"], r["type filter"]
        rec = lambda d: "n/a" if d.get("recall@10") is None else f"{d['recall@10']:.3f}"  # noqa: E731
        # a store stopped at the time limit is compared with exact search over the rows it holds
        mem = f"{r['rss_growth_mb']:,.0f}" + (f" (+{r['disk_mb']:,.0f} disk)" if "disk_mb" in r else "")
        n = f"{r['n']:,} x {r['dim']}" + ("" if r["complete"] else " (time limit)")
        lines.append(
            f"| {r['method']} | `{r['store']}` | {n} | {r['build_s']:.1f} | {mem} | {a['median_ms']:.2f} / {a['p95_ms']:.2f} | "
            f"{rec(a)} | {f['median_ms']:.2f} / {f['p95_ms']:.2f} | {rec(f)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
