"""`surveil run` and `surveil cameras status` as an operator runs them, in subprocesses.

Looping video files stand in for cameras (no server needed); one camera points at a
closed port with a password from the secrets file, so its failures are logged and stored
- and the password must appear in neither. SIGTERM arrives while the models are behind
(keyframes pending): the process must exit 0 within live.shutdown_seconds, and the index
it saved must hold exactly the appearances the catalog holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from catalog_sql import catalog_rows
from cli_process import run_cli
from streams import free_port

from surveil.domain import SPACES
from surveil.index.sharded import ShardedFaissIndex
from surveil.storage.migrate import upgrade

LOBBY = "videos/intel_sample_videos/one-by-one-person-detection.mp4"
LOT = "videos/intel_sample_videos/car-detection.mp4"
SECRET = "Zq9-very-secret"
SHUTDOWN_SECONDS = 12.0
STATUS_KEYS = {"id", "state", "last_frame_at", "fps", "keyframes", "drops", "reconnects"}

pytestmark = pytest.mark.timeout(300)


def _committed_keyframes(url: str) -> int:
    return int(catalog_rows(url, "SELECT count(*) FROM keyframes")[0][0])


def _catalog_ids(url: str) -> set[int]:
    return {int(r[0]) for r in catalog_rows(url, "SELECT id FROM tracks")}


def test_run_stops_cleanly_on_sigterm_and_status_reports_every_camera(
    tmp_path: Path, shared_data: Path, pg_url: str
) -> None:
    upgrade(pg_url)
    models = shared_data / "models"
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"# camera passwords\nGATE_PASSWORD={SECRET}\n")
    config = tmp_path / "site.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"root": str(tmp_path / "data")},
                "database": {"url": pg_url},
                "model_dir": str(models),
                "detector": {"weights": str(models / "yolov8n_int8_dynamic.onnx")},
                "live": {
                    "secrets_file": str(secrets),
                    "health_seconds": 0.5,
                    "backoff_seconds": 0.5,
                    "backoff_max_seconds": 2.0,
                    "open_timeout_seconds": 2.0,
                    "shutdown_seconds": SHUTDOWN_SECONDS,
                },
                "cameras": [
                    {"id": "lobby", "url": str(shared_data / LOBBY)},
                    {"id": "lot", "url": str(shared_data / LOT), "name": "Parking lot"},
                    {
                        "id": "gate",
                        "url": f"rtsp://admin:${{GATE_PASSWORD}}@127.0.0.1:{free_port()}/s",
                    },
                ],
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
    stderr_path = tmp_path / "run.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "surveil.cli", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 120
            while _committed_keyframes(pg_url) < 6:
                assert proc.poll() is None, stderr_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no keyframes committed in 120 s"
                time.sleep(0.5)
            time.sleep(2.0)  # let the pending queue fill: the stop happens under load
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=SHUTDOWN_SECONDS + 10)
            took = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = stderr_path.read_text()
    assert rc == 0, log[-3000:]
    assert took <= SHUTDOWN_SECONDS + 2.0, f"stopped in {took:.1f}s"
    assert "live.stopped" in log
    assert SECRET not in log
    # A stopped worker leaves no lease and no registration behind: others take over now.
    assert catalog_rows(pg_url, "SELECT count(*) FROM camera_leases")[0][0] == 0
    assert catalog_rows(pg_url, "SELECT count(*) FROM live_workers")[0][0] == 0
    assert "live.worker_stopped" in log
    assert "admin:***@127.0.0.1" in log  # the failing camera is named, masked

    # The index saved at shutdown holds exactly what the catalog committed.
    index = ShardedFaissIndex(tmp_path / "data" / "index")
    indexed = {int(i) for s in SPACES for ids in index.ids_by_day(s).values() for i in ids}
    assert indexed == _catalog_ids(pg_url)
    assert indexed

    status = run_cli(
        env, "--config", str(config), "cameras", "status", "--json", code=None, timeout=120
    )
    assert status.returncode == 0, status.stderr
    assert SECRET not in status.stdout + status.stderr
    board = json.loads(status.stdout)
    assert board["workers"] == []
    cameras = {c["id"]: c for c in board["cameras"]}
    assert set(cameras) == {"lobby", "lot", "gate"}
    for cam in cameras.values():
        assert STATUS_KEYS | {"last_error"} <= set(cam)
        assert cam["state"] == "stopped"
    assert cameras["lobby"]["keyframes"] + cameras["lot"]["keyframes"] == _committed_keyframes(
        pg_url
    )
    assert cameras["lobby"]["last_frame_at"].endswith("Z")
    assert cameras["gate"]["keyframes"] == 0 and cameras["gate"]["reconnects"] >= 1
    assert cameras["gate"]["last_frame_at"] is None
    assert "admin:***@" in cameras["gate"]["last_error"]

    text_status = run_cli(env, "--config", str(config), "cameras", "status", code=None, timeout=120)
    assert text_status.returncode == 0
    assert "lobby" in text_status.stdout and SECRET not in text_status.stdout


def test_a_second_run_beside_a_live_faiss_worker_is_refused_in_one_line(
    tmp_path: Path, shared_data: Path
) -> None:
    """The embedded defaults (SQLite + FAISS) run one worker: a second one says what to do."""
    from datetime import UTC, datetime, timedelta

    from cli_process import cli_env

    from surveil.storage.db import make_engine, make_session_factory
    from surveil.storage.leases import SqlLeases, WorkerInfo

    root = tmp_path / "data"
    root.mkdir()
    url = f"sqlite:///{(root / 'catalog.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    other = "gpu-host-7:4242:abc123.0"
    try:
        SqlLeases(make_session_factory(engine)).register(
            WorkerInfo(other, "gpu-host-7", 4242, now, now, now + timedelta(minutes=5))
        )
    finally:
        engine.dispose()
    config = tmp_path / "site.yaml"
    config.write_text(
        yaml.safe_dump({"cameras": [{"id": "lobby", "url": str(shared_data / LOBBY)}]})
    )
    env = cli_env(root, url, shared_data / "models")
    proc = run_cli(env, "run", "--config", str(config), code=3, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert other in errors[0] and "index.backend: milvus" in errors[0]
    assert "models.loaded" not in proc.stderr  # refused before loading any model
