"""What goes wrong around the CLI ends in one `error:` line, never a traceback.

Real subprocesses, real databases, real file systems: a PostgreSQL database dropped under
a running ingest, a port another process holds, a read-only and a full storage root.
`--debug` brings the traceback back for whoever has to dig.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from cli_process import cli_env, run_cli
from psycopg import sql

from surveil.cli.common import error_exit

VIDEO = "videos/intel_sample_videos/car-detection.mp4"
MOT09 = "mot/MOT17-mini/train/MOT17-09-FRCNN/img1/%06d.jpg"


def _env(root: Path, database_url: str, shared_data: Path) -> dict[str, str]:
    base = cli_env(root, database_url, shared_data / "models")
    return base


def _one_error_line(stderr: str) -> str:
    """The stderr of a failed command: no traceback, exactly one `error:` line; returns it."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name]


@contextmanager
def _tmpfs(where: Path, *options: str) -> Iterator[Path]:
    """A small file system of our own (root only); skips where mounting is not allowed."""
    where.mkdir()
    opts = ",".join(("size=1m", *options))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def pg_env(tmp_path: Path, pg_url: str, shared_data: Path) -> dict[str, str]:
    env = _env(tmp_path / "data", pg_url, shared_data)
    run_cli(env, "db", "upgrade")
    return env


def _keyframes(url: str) -> int:
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute("select count(*) from keyframes").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def _drop(url: str) -> None:
    base, _, name = url.rpartition("/")
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1) + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_database_lost_mid_ingest_is_one_error_line(
    pg_env: dict[str, str], shared_data: Path
) -> None:
    url = pg_env["SURVEIL_DATABASE__URL"]
    cmd = [sys.executable, "-m", "surveil.cli", "ingest", str(shared_data / VIDEO)]
    proc = subprocess.Popen(
        [*cmd, "--camera", "road", "--all-frames"],
        env=pg_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while _keyframes(url) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "ingest ended before its first batch was seen"
        _drop(url)  # the catalog vanishes under the running ingest
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    line = _one_error_line(stderr)
    assert "catalog database lost or unreachable" in line and "database.url" in line
    assert not _temp_files(Path(pg_env["SURVEIL_STORAGE__ROOT"]))


def test_debug_shows_the_traceback_behind_the_line(tmp_path: Path, shared_data: Path) -> None:
    env = _env(tmp_path / "data", "postgresql+psycopg://nobody@127.0.0.1:9/none", shared_data)
    plain = run_cli(env, "cameras", "status", code=3)
    assert "cannot connect to the catalog database" in _one_error_line(plain.stderr)
    debug = run_cli(env, "--debug", "cameras", "status", code=3)
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("error: ")
    by_setting = run_cli({**env, "SURVEIL_LOGGING__LEVEL": "DEBUG"}, "cameras", "status", code=3)
    assert "Traceback (most recent call last)" in by_setting.stderr


def test_serve_on_a_busy_port_says_which_and_how_to_pick_another(
    tmp_path: Path, shared_data: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'catalog.db'}"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        proc = run_cli(
            _env(tmp_path / "data", db, shared_data), "serve", "--port", str(port), code=2
        )
    line = _one_error_line(proc.stderr)
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port" in line
    assert "serve.start" not in proc.stderr
    assert time.monotonic() - started < 60  # refused before any model loads


def test_read_only_storage_root_is_one_error_line(tmp_path: Path, shared_data: Path) -> None:
    with _tmpfs(tmp_path / "ro", "ro") as ro:
        root = ro / "data"
        env = _env(root, f"sqlite:///{tmp_path / 'catalog.db'}", shared_data)
        proc = run_cli(env, "ingest", str(shared_data / MOT09), "--camera", "plaza", code=1)
    line = _one_error_line(proc.stderr)
    assert f"cannot write {root}" in line and "SURVEIL_STORAGE__ROOT" in line


def test_full_disk_is_one_error_line_and_leaves_no_partial_files(
    tmp_path: Path, shared_data: Path
) -> None:
    with _tmpfs(tmp_path / "full") as full:
        root = full / "data"
        env = _env(root, f"sqlite:///{tmp_path / 'catalog.db'}", shared_data)
        args = ("ingest", str(shared_data / MOT09), "--camera", "plaza", "--all-frames")
        proc = run_cli(env, *args, code=1)
        assert not _temp_files(root)
    line = _one_error_line(proc.stderr)
    assert "no space left on the device" in line and "storage.root" in line


def test_storage_root_that_is_a_file_is_one_error_line(tmp_path: Path, shared_data: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    env = _env(blocker / "data", f"sqlite:///{tmp_path / 'catalog.db'}", shared_data)
    proc = run_cli(env, "ingest", str(shared_data / MOT09), "--camera", "plaza", code=1)
    assert "Not a directory" in _one_error_line(proc.stderr)


def test_any_other_exception_names_what_failed_and_points_to_debug() -> None:
    message, code = error_exit(RuntimeError("faiss: index file truncated\nsecond line"))
    assert code == 1
    assert message == (
        "unexpected RuntimeError: faiss: index file truncated; "
        "re-run with --debug for the traceback"
    )
