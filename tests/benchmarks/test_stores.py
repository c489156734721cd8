"""benchmarks/stores.py: a `milvus-server` row gets the started server's address and a collection of its own."""

from types import SimpleNamespace

from benchmarks.stores import server_uri


def test_each_server_row_gets_its_own_collection_and_keeps_its_options():
    server = SimpleNamespace(port=19531)
    a, b = server_uri("milvus-server?index=FLAT", server), server_uri("milvus-server?index=FLAT", server)
    assert a.startswith("milvus://127.0.0.1:19531?index=FLAT&collection=b") and a != b
    assert server_uri("milvus-server", server).startswith("milvus://127.0.0.1:19531?collection=b")
    assert server_uri("milvus-server?collection=mine", server) == "milvus://127.0.0.1:19531?collection=mine"
    assert server_uri("faiss:hnsw", server) == "faiss:hnsw"
