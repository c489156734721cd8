"""A real Milvus standalone server for the tests: the `milvus` PyPI package's binary, on 127.0.0.1 with free
ports and a data folder of its own; started once per session (about 15-25 s here), stopped at the end."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MilvusTestServer:
    """One Milvus standalone process; `uri(**options)` gives a store URI with a collection prefix of its own."""

    def __init__(self, base_dir: Path) -> None:
        from milvus import MilvusServer

        self.server = MilvusServer()
        self.server.set_base_dir(str(base_dir))
        self.server.listen_port = free_port()  # the other ports (etcd, metrics) are probed free by the package

    @property
    def port(self) -> int:
        return int(self.server.listen_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "MilvusTestServer":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        if self.server.server_proc is not None:
            self.server.server_proc.wait(timeout=30)

    def uri(self, **options: str) -> str:
        """`milvus://127.0.0.1:PORT?collection=t<random>&...`: tests never see each other's collections."""
        opts = {"collection": f"t{uuid.uuid4().hex[:10]}", **options}
        return f"milvus://127.0.0.1:{self.port}?" + "&".join(f"{k}={v}" for k, v in opts.items())
