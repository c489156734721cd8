#!/usr/bin/env python
"""How long the app's store takes at its first start (build) and at a restart (check), on the demo gallery with
every method: `open_gallery_store` timed on a fresh collection, then again on the same one. `--sequential` calls
the spaces one after another, as before they were called at once on a server.

    milvus-server --data /tmp/milvus-bench &   # the `milvus` package's standalone server, port 19530
    python -m benchmarks.store_start --store milvus://127.0.0.1:19530 --out results/store-start.json
    pkill -f /tmp/milvus-bench                 # the tests' own Milvus server did not start beside it"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import app  # noqa: E402
from cbir.stores.sync import open_gallery_store  # noqa: E402
from cbir.stores.uri import StoreURI  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True, help="a Milvus server (milvus://host:port) or file (milvus:PATH)")
    p.add_argument("--sequential", action="store_true", help="one space after another")
    p.add_argument("--out", help="write the figures here as JSON")
    args = p.parse_args(argv)
    if args.sequential:
        StoreURI.remote = property(lambda self: False)  # type: ignore[assignment]
    engine = app.build_engine(app.parse_args(["--device", "cpu"]))
    sep = "&" if "?" in args.store else "?"
    uri = f"{args.store}{sep}collection=bench{uuid.uuid4().hex[:8]}"
    out = {"store": args.store, "sequential": args.sequential, "rows": len(engine.gallery)}
    for phase in ("build_s", "restart_s"):
        t0 = time.perf_counter()
        store = open_gallery_store(uri, engine.gallery, engine.classifiers, engine.available_methods(), progress=False)
        out[phase] = round(time.perf_counter() - t0, 2)
        out["spaces"] = list(store.spaces)
        store.close()
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
