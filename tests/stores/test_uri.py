"""Store URIs and the Milvus filter expression (no Milvus needed)."""

from __future__ import annotations

import pytest

from cbir.stores import describe, open_store, parse_store_uri
from cbir.stores.milvus_store import milvus_filter


def test_store_uris():
    assert parse_store_uri("numpy").backend == "numpy" and parse_store_uri("").backend == "numpy"
    u = parse_store_uri("faiss:ivf?nlist=64&nprobe=8")
    assert (u.backend, u.location, u.options) == ("faiss", "ivf", {"nlist": "64", "nprobe": "8"})
    u = parse_store_uri("milvus:./demo.db?index=HNSW")
    assert (u.backend, u.location, u.options, u.persistent) == ("milvus", "./demo.db", {"index": "HNSW"}, True)
    u = parse_store_uri("milvus://db.example:19530?token=root:secret")
    assert u.location == "http://db.example:19530" and "secret" not in describe(u)
    for bad, msg in (("redis://x", "unknown store"), ("milvus:", "milvus needs"), ("numpy:/x", "takes no path")):
        with pytest.raises(ValueError, match=msg):
            parse_store_uri(bad)


def test_an_unknown_milvus_consistency_is_refused_before_connecting():
    with pytest.raises(ValueError, match="unknown Milvus consistency 'Weak'.*Strong"):
        open_store("milvus://127.0.0.1:9?consistency=weak", "g", 8, "cosine")


def test_milvus_filter_quotes_values_and_checks_columns():
    assert milvus_filter(None) == "" and milvus_filter({"type": []}) == ""
    expr = milvus_filter({"type": ["shoes", "dress"], "colour": ['red "x"', "a\\b", "grün"]})
    assert expr == 'type in ["dress", "shoes"] and colour in ["a\\\\b", "grün", "red \\"x\\""]'
    with pytest.raises(ValueError, match="label columns"):
        milvus_filter({"id > 0 or type": ["x"]})


def test_a_live_edit_flushes_milvus_lite_but_not_a_server(tmp_path):
    """A server's log already holds every acknowledged write (the crash test is in test_milvus_server.py)."""
    pytest.importorskip("milvus_lite")
    store = open_store(f"milvus:{tmp_path / 'g.db'}", "raw", 4, "cosine")
    calls = []
    store._call = lambda method, *a, **k: calls.append(method)
    assert not store.server
    store.flush(edit=True)
    store.server = True  # the same store as if it were on milvus://host:19530
    store.flush(edit=True)
    store.flush()
    assert calls == ["flush", "flush"]  # lite's edit flush, then the server's bulk flush; the server's edit none
