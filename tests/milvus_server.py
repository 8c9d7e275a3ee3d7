"""A real Milvus server for tests: Milvus Lite's gRPC server as a child process.

`python -m milvus_lite server` serves the Milvus gRPC API that Standalone and a cluster
serve, so `surveil.index.milvus.MilvusIndex` is tested over the wire, exactly as in
production (only the URI differs).

Fixtures (shared through tests/conftest.py):

- `milvus_server` (session): the running `MilvusServer` (uri, port, data_dir, pid,
  log_tail()); other tests (the scale-out test) reuse it rather than starting another.
- `milvus_uri` (session): its ``http://127.0.0.1:PORT``.
- `milvus_prefix` (function): a collection prefix unique to the test, so tests sharing
  the one server never see each other's collections.

The server is killed at teardown; it also exits when its stdin reaches end-of-file
(the test process holds the pipe's only write end, as in tests/stream_serve.py), so a
test run killed by SIGKILL leaves none behind.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from streams import LOOPBACK, free_port

#: Runs `python -m milvus_lite server ARGS` in a process that exits once stdin closes.
_SERVE = (
    "import os, runpy, sys, threading\n"
    # Milvus Standalone accepts keepalive pings every 5 s; grpcio's default server
    # policy (Milvus Lite's) allows one per 5 min and answers pymilvus's 10 s pings with
    # GOAWAY 'too many pings'. Give the test server Standalone's policy.
    "import grpc\n"
    "_server = grpc.server\n"
    "def server(*args, options=(), **kwargs):\n"
    "    options = [*options, ('grpc.http2.min_ping_interval_without_data_ms', 5000),\n"
    "               ('grpc.http2.max_ping_strikes', 0)]\n"
    "    return _server(*args, options=options, **kwargs)\n"
    "grpc.server = server\n"
    "def watch():\n"
    "    while sys.stdin.buffer.read(4096):\n"
    "        pass\n"
    "    os._exit(0)\n"
    "threading.Thread(target=watch, daemon=True).start()\n"
    "sys.argv = ['milvus_lite', *sys.argv[1:]]\n"
    "runpy.run_module('milvus_lite', run_name='__main__')\n"
)


@dataclass
class MilvusServer:
    """One `milvus_lite server` process on a loopback port, with its data in `data_dir`."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def uri(self) -> str:
        """What `index.milvus.uri` is set to."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id (a test may kill it to see the index fail clearly)."""
        assert self._proc is not None
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        """Where the server's output goes."""
        return self.data_dir.parent / f"milvus-{self.port}.log"

    def start(self, timeout: float = 60.0) -> MilvusServer:
        """Spawn the server and return once it answers a Milvus call."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-c", _SERVE, "server", "--data-dir", str(self.data_dir)]
        cmd += ["--host", LOOPBACK, "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from pymilvus import MilvusClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"milvus_lite server exited:\n{self.log_tail()}")
            if _accepts(self.port):
                try:
                    probe = MilvusClient(uri=self.uri, timeout=2)
                    probe.list_collections()
                    probe.close()  # an idle client keeps pinging: Lite answers with GOAWAY
                    return
                except Exception:  # not serving yet: retry until the deadline
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"milvus_lite server not ready in {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server (kill if it lingers) and wait for it."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        if self._proc.stdin is not None:
            self._proc.stdin.close()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's output, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def milvus_lite_problem() -> str | None:
    """Why a Milvus Lite server cannot be started here, or None when it can."""
    for module in ("milvus_lite", "pymilvus"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[dev]')"
    if not sys.platform.startswith("linux"):
        return "the Milvus Lite server fixture runs on Linux only"
    return None


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    """A Milvus Lite gRPC server for the whole session, killed at the end."""
    problem = milvus_lite_problem()
    if problem:
        pytest.skip(f"no Milvus server: {problem}")
    server = MilvusServer(tmp_path_factory.mktemp("milvus") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def milvus_uri(milvus_server: MilvusServer) -> str:
    """``http://127.0.0.1:PORT`` of the session's Milvus server."""
    return milvus_server.uri


@pytest.fixture
def milvus_prefix() -> str:
    """A collection prefix of this test's own (tests share one server)."""
    return f"t{uuid.uuid4().hex[:10]}_"


__all__ = [
    "MilvusServer",
    "milvus_lite_problem",
    "milvus_prefix",
    "milvus_server",
    "milvus_uri",
]
