"""A real Milvus standalone server for the tests: the `milvus` PyPI package's binary, on 127.0.0.1 with free
ports and a data folder of its own; started once per session (about 15-25 s here), stopped at the end."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Optional


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bind_reusing(port: int) -> Optional[socket.socket]:
    """The package's free-port probe with SO_REUSEADDR, as the Go server itself binds."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


class MilvusTestServer:
    """One Milvus standalone process; `uri(**options)` gives a store URI with a collection prefix of its own."""

    def __init__(self, base_dir: Path) -> None:
        from milvus import MilvusServer

        self.server = MilvusServer()
        self.server.set_base_dir(str(base_dir))
        # Every port the OS's pick, fixed for restarts: the package's own probing from fixed defaults (53100, 9091...)
        # races with other Milvus servers starting on the same machine.
        keys = [k for k in self.server.config_keys if k.endswith("_port")]
        self.server.config.update(**{k: free_port() for k in keys})
        self.server.webservice_port = free_port()
        self.server.config.try_bind_port = _bind_reusing  # a restart finds its ports in TIME_WAIT; the server reuses them

    @property
    def port(self) -> int:
        return int(self.server.config.configs["proxy_port"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        proc = self.server.server_proc
        return proc is not None and proc.poll() is None

    def start(self) -> "MilvusTestServer":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        if self.server.server_proc is not None:
            self.server.server_proc.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL, as a power cut: nothing is flushed on the way down."""
        self.server.server_proc.kill()
        self.server.server_proc.wait(timeout=30)
        self.server.server_proc = None
        for fd in self.server.proc_fds.values():
            fd.close()
        self.server.proc_fds.clear()

    def uri(self, **options: str) -> str:
        """`milvus://127.0.0.1:PORT?collection=t<random>&...`: tests never see each other's collections."""
        opts = {"collection": f"t{uuid.uuid4().hex[:10]}", **options}
        return f"milvus://127.0.0.1:{self.port}?" + "&".join(f"{k}={v}" for k, v in opts.items())
