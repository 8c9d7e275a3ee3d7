"""Real camera streams and a restartable catalog for the live-ingest tests.

Live ingest must survive what real cameras and databases do: drop off, come back at the
same address, stall, restart. Mocks would not exercise OpenCV's FFmpeg protocol code,
its timeouts or its reconnects, so these helpers run real servers on loopback, fed from
the ../shared/data videos at their native rate:

- `http_ts_server`: ffmpeg serving MPEG-TS over HTTP (`-listen 1`), relaunched by a
  supervisor after every client (see tests/stream_serve.py);
- `rtsp_server`: GStreamer's RTSP server (Debian's gstreamer1.0-rtsp), run by Debian's
  /usr/bin/python3 because the GObject bindings live there, not in the venv;
- `restart_postgres` / `PostgresCluster.outage`: stop and start the local PostgreSQL
  cluster with `pg_ctlcluster`.

`StreamServer.stop()` is SIGKILL, a crashed camera; `restart()` serves again at the same
URL (the port is picked once). The fixtures at the end skip with the reason when a tool is
missing, and fail in CI (CI set), where scripts/ensure-streaming.sh must have installed
them. Tools: Debian 12 packages ffmpeg, python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-{rtsp,plugins-base,plugins-good,plugins-bad}.
"""

from __future__ import annotations

import atexit
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Protocol
from urllib.parse import urlsplit

import psycopg
import pytest
from conftest import PG_URL

SERVE = Path(__file__).resolve().parent / "stream_serve.py"
SYSTEM_PYTHON = Path("/usr/bin/python3")
LOOPBACK = "127.0.0.1"


# --- ports ---------------------------------------------------------------------------


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free TCP port on loopback *below* the ephemeral range.

    A server that is down for a while must get its port back, and a reader that keeps
    reconnecting to a dead loopback port from an ephemeral source port can, by chance,
    connect to itself (TCP simultaneous open) or occupy the port; ports the kernel never
    hands out as source ports avoid both.
    """
    low, _high = _ephemeral_range()
    candidates = random.sample(range(10000, max(10001, low)), k=min(200, max(1, low - 10000)))
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def _tcp_states(port: int) -> set[str]:
    """The states (/proc/net hex codes) of the TCP sockets whose local port is `port`."""
    states: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()  # sl local_address rem_address st ...
            if len(fields) > 3 and fields[1].endswith(f":{port:04X}"):
                states.add(fields[3])
    return states


def is_listening(port: int) -> bool:
    """Whether something LISTENs on the TCP port, read from /proc/net without connecting.

    Connecting to probe would use up `ffmpeg -listen 1`'s single client.
    """
    return "0A" in _tcp_states(port)  # 0A: LISTEN


def is_serving(port: int) -> bool:
    """Listening, or already serving a client on the port (01: ESTABLISHED): a camera
    reader that reconnects at once takes `ffmpeg -listen 1`'s only slot, and the port
    stops listening until it leaves."""
    return bool(_tcp_states(port) & {"0A", "01"})


# --- servers -------------------------------------------------------------------------


@functools.cache
def _default_log_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="surveil-streams-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@dataclass
class StreamServer:
    """One stream server process on a fixed loopback port: start, kill, bring back.

    The process runs in its own session so `stop()` can SIGKILL it with everything it
    started (the HTTP supervisor's ffmpeg), and it exits by itself when the test process
    goes away (it watches its stdin pipe). Output goes to `log_path` for post-mortems.
    """

    url: str
    port: int
    argv: Sequence[str]
    log_path: Path
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 20.0) -> StreamServer:
        """Launch the server and wait until its port listens; no-op when running."""
        if self.running:
            return self
        self._close_log()
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            list(self.argv),
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_ready(timeout, serving=True)
        except RuntimeError:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 10.0, *, serving: bool = False) -> None:
        """Block until the server accepts a client (raises RuntimeError after `timeout`).

        For the HTTP server this also waits out the relaunch after a client left (its
        port does not listen while ffmpeg serves a client). `serving=True` also takes a
        client already connected as ready (a reader that reconnected at once).
        """
        ready = is_serving if serving else is_listening
        deadline = time.monotonic() + timeout
        while not ready(self.port):
            exited = self._proc is None or self._proc.poll() is not None
            if exited or time.monotonic() > deadline:
                why = "is not running" if exited else f"not listening after {timeout}s"
                raise RuntimeError(f"stream server for {self.url} {why}:\n{self.log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGKILL the server and its children, as a crashing camera would go; idempotent.

        Returns once the port no longer listens, so a `start()` right after cannot
        mistake the dying process's socket for the new one.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # also ends a stall
            proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()
        deadline = time.monotonic() + 5
        while is_listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._close_log()

    def stall(self) -> None:
        """SIGSTOP the server: connections stay open but no frame comes (a hung camera).

        What a reader's stall watchdog must catch; `resume()` lets it go on.
        """
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `stall()`."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def restart(self, down_seconds: float = 0.0, timeout: float = 20.0) -> None:
        """Kill the server, stay down `down_seconds`, serve again at the same URL."""
        self.stop()
        if down_seconds > 0:
            time.sleep(down_seconds)
        self.start(timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> StreamServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _log_path(log_dir: Path | None, kind: str, port: int) -> Path:
    directory = log_dir if log_dir is not None else _default_log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{kind}-{port}.log"


def http_ts_server(
    video: Path, *, loop: bool = True, log_dir: Path | None = None, start: bool = True
) -> StreamServer:
    """ffmpeg re-streaming `video` as MPEG-TS at http://127.0.0.1:PORT/live.ts.

    `-re` sends at the file's native rate; with `loop` the file repeats forever with
    increasing timestamps. One client at a time (`-listen 1`); after a client leaves,
    ffmpeg is relaunched within a few hundred milliseconds, during which a connection
    is refused, like a camera's HTTP server restarting. Each client starts at the top
    of the file. The video is copied, not re-encoded (H.264 files from shared data).
    """
    port = free_port()
    argv = [sys.executable, str(SERVE), "http", "--video", str(video), "--port", str(port)]
    argv += ["--host", LOOPBACK, "--path", "/live.ts"]
    if not loop:
        argv.append("--no-loop")
    server = StreamServer(
        url=f"http://{LOOPBACK}:{port}/live.ts",
        port=port,
        argv=argv,
        log_path=_log_path(log_dir, "http", port),
    )
    return server.start() if start else server


def rtsp_server(
    video: Path,
    *,
    loop: bool = True,
    shared: bool = True,
    log_dir: Path | None = None,
    start: bool = True,
) -> StreamServer:
    """GStreamer's RTSP server serving `video` (H.264 in MP4) at rtsp://127.0.0.1:PORT/live.

    Paced at the native rate, looping forever with increasing timestamps, not
    re-encoded. `shared` (the default, like a camera): all clients watch one timeline and a
    late client starts at the next keyframe, so prefer files with frequent keyframes
    (one-by-one-person-detection.mp4: every second); `shared=False` gives every client
    its own playback from the first frame. Both UDP and TCP-interleaved transports work.
    """
    port = free_port()
    argv = [str(SYSTEM_PYTHON), str(SERVE), "rtsp", "--video", str(video), "--port", str(port)]
    argv += ["--host", LOOPBACK, "--path", "/live"]
    if not loop:
        argv.append("--no-loop")
    if not shared:
        argv.append("--unshared")
    server = StreamServer(
        url=f"rtsp://{LOOPBACK}:{port}/live",
        port=port,
        argv=argv,
        log_path=_log_path(log_dir, "rtsp", port),
    )
    return server.start() if start else server


def ffmpeg_problem() -> str | None:
    """Why the HTTP stream server cannot run here, or None."""
    if shutil.which("ffmpeg") is None:
        return "ffmpeg not found on PATH (run scripts/ensure-streaming.sh as root)"
    return None


@functools.cache
def rtsp_problem() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None (checked once per run)."""
    if not SYSTEM_PYTHON.is_file():
        return f"{SYSTEM_PYTHON} missing (GStreamer's RTSP server runs under Debian's Python)"
    result = subprocess.run(
        [str(SYSTEM_PYTHON), str(SERVE), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or ["check failed"]
        return f"GStreamer RTSP server unusable from {SYSTEM_PYTHON}: {detail[0]}" + (
            " (run scripts/ensure-streaming.sh as root)"
        )
    return None


# --- PostgreSQL ----------------------------------------------------------------------


def _libpq_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def pg_accepts(url: str, timeout: float = 2.0) -> bool:
    """Whether the server at `url` accepts a connection and answers a query now."""
    try:
        with psycopg.connect(_libpq_dsn(url), connect_timeout=max(1, round(timeout))) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError:
        return False
    return True


@dataclass
class Outage:
    """How long the catalog was unreachable; `seconds` is set when the outage ends."""

    seconds: float = 0.0


@dataclass(frozen=True)
class PostgresCluster:
    """A local Debian PostgreSQL cluster the tests may stop and start (pg_ctlcluster)."""

    version: str
    name: str
    url: str

    def _ctl(self, action: str, *extra: str) -> None:
        argv = ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action]
        result = subprocess.run(
            [*argv, *extra], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; returns once it is down. `mode` is pg_ctl's shutdown mode:
        "fast" disconnects clients and shuts down cleanly, "immediate" is a crash."""
        self._ctl("stop", "--mode", mode)

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (no-op when it runs) and wait until it accepts connections."""
        if not pg_accepts(self.url):
            self._ctl("start")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the server accepts connections again (raises after `timeout`)."""
        deadline = time.monotonic() + timeout
        while not pg_accepts(self.url):
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL at {self.url} not back after {timeout}s")
            time.sleep(0.1)

    @contextmanager
    def outage(self, timeout: float = 60.0, *, mode: str = "fast") -> Iterator[Outage]:
        """Stop the cluster for the body of the `with`, then start it and wait for it.

        The cluster is started again even when the body raises, so a failing test never
        leaves the shared server down.
        """
        outage = Outage()
        began = time.monotonic()
        self.stop(mode)
        try:
            yield outage
        finally:
            self.start(timeout)
            outage.seconds = time.monotonic() - began

    def restart(self, timeout: float = 60.0, *, down_seconds: float = 0.0) -> float:
        """Stop, stay down `down_seconds`, start; return the seconds it did not serve."""
        with self.outage(timeout) as outage:
            time.sleep(down_seconds)
        return outage.seconds


def postgres_cluster_for(url: str = PG_URL) -> PostgresCluster | str:
    """The local cluster serving `url`, or why it cannot be controlled from here."""
    parts = urlsplit(_libpq_dsn(url))
    if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        return f"PostgreSQL at {parts.hostname} is not local; cannot restart it"
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        return "pg_lsclusters/pg_ctlcluster not found (Debian's postgresql-common)"
    if os.geteuid() != 0:
        return "restarting PostgreSQL needs root (pg_ctlcluster)"
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    ).stdout
    port = str(parts.port or 5432)
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == port:
            return PostgresCluster(version=fields[0], name=fields[1], url=url)
    return f"no local cluster on port {port} in pg_lsclusters"


def restart_postgres(timeout: float = 60.0, *, down_seconds: float = 0.0) -> float:
    """Restart the local cluster behind TEST_PG_URL; return how long it did not serve.

    Measured from the stop command to the first accepted connection, so it bounds the
    outage the code under test saw. `down_seconds` keeps it down longer, e.g. while
    ingest keeps running.
    """
    cluster = postgres_cluster_for(PG_URL)
    if isinstance(cluster, str):
        raise RuntimeError(cluster)
    return cluster.restart(timeout, down_seconds=down_seconds)


# --- fixtures ------------------------------------------------------------------------


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the live stream tests)")
    pytest.skip(reason)


class HttpStreamFactory(Protocol):
    def __call__(self, video: Path, *, loop: bool = True) -> StreamServer: ...


class RtspStreamFactory(Protocol):
    def __call__(self, video: Path, *, loop: bool = True, shared: bool = True) -> StreamServer: ...


@pytest.fixture
def http_stream_factory(tmp_path: Path) -> Iterator[HttpStreamFactory]:
    """Start HTTP MPEG-TS servers (already serving); all are killed at teardown."""
    problem = ffmpeg_problem()
    if problem:
        _unavailable(problem)
    servers: list[StreamServer] = []

    def make(video: Path, *, loop: bool = True) -> StreamServer:
        server = http_ts_server(video, loop=loop, log_dir=tmp_path / "streams", start=False)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def rtsp_stream_factory(tmp_path: Path) -> Iterator[RtspStreamFactory]:
    """Start GStreamer RTSP servers (already serving); all are killed at teardown."""
    problem = rtsp_problem()
    if problem:
        _unavailable(problem)
    servers: list[StreamServer] = []

    def make(video: Path, *, loop: bool = True, shared: bool = True) -> StreamServer:
        server = rtsp_server(
            video, loop=loop, shared=shared, log_dir=tmp_path / "streams", start=False
        )
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def postgres_cluster(pg_server: str) -> Iterator[PostgresCluster]:
    """The local cluster behind `pg_server`, to restart mid-test; left running afterwards."""
    cluster = postgres_cluster_for(pg_server)
    if isinstance(cluster, str):
        _unavailable(cluster)
    yield cluster
    cluster.start()
