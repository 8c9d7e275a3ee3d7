"""Two live ingest workers share three looping file cameras through one PostgreSQL catalog.

Each worker is a whole `LiveService` with real models and its own storage root. Under
`index.backend: faiss` a second worker is refused (vectors live in one process's files),
so this test says `check_shared_index=False` explicitly: what it checks is the camera
sharing - the split, the clean hand-over, never one camera in two workers - not search.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from catalog_sql import catalog_rows

from surveil.config import CameraSettings, load_settings
from surveil.container import Services, build_services
from surveil.domain import ConfigError
from surveil.ingest.live.service import LiveService
from surveil.storage.migrate import upgrade

VIDEOS = {
    "w-lobby": "videos/intel_sample_videos/one-by-one-person-detection.mp4",
    "w-lot": "videos/intel_sample_videos/car-detection.mp4",
    "w-street": "videos/intel_sample_videos/car-detection.mp4",  # a second camera, same view
}
LEASE_S = 3.0

pytestmark = pytest.mark.timeout(300)


def _services(pg_url: str, root: Path, shared_data: Path, worker: str) -> Services:
    models = shared_data / "models"
    settings = load_settings(
        overrides={
            "storage.root": str(root / worker),
            "database.url": pg_url,
            "model_dir": str(models),
            "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
            "live.health_seconds": 0.5,
            "live.shutdown_seconds": 15.0,
            "live.lease_seconds": LEASE_S,
            "live.worker_id": worker,
            "live.from_catalog": False,
            "cameras": [
                CameraSettings(id=c, url=str(shared_data / v)).model_dump()
                for c, v in VIDEOS.items()
            ],
        }
    )
    return build_services(settings)


@pytest.fixture
def workers(pg_url: str, shared_data: Path, tmp_path: Path) -> Iterator[tuple[Services, Services]]:
    upgrade(pg_url)
    one = _services(pg_url, tmp_path, shared_data, "worker-1")
    two = _services(pg_url, tmp_path, shared_data, "worker-2")
    try:
        yield one, two
    finally:
        one.close()
        two.close()


def _wait(what: str, check: Callable[[], bool], timeout: float = 90.0) -> float:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"timed out after {timeout}s: {what}"
        time.sleep(0.05)
    return time.monotonic() - began


class Overlap:
    """Watches two services and records any moment a camera is read by both."""

    def __init__(self, a: LiveService, b: LiveService) -> None:
        self.seen: list[set[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(a, b), daemon=True)
        self._thread.start()

    def _run(self, a: LiveService, b: LiveService) -> None:
        while not self._stop.wait(0.02):
            both = a.reading & b.reading
            if both:
                self.seen.append(both)

    def close(self) -> list[set[str]]:
        self._stop.set()
        self._thread.join()
        return self.seen


def _check_board(services: Services, moved: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API, /metrics and `surveil cameras status|workers` name who reads which camera."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from surveil.api.app import create_app
    from surveil.cli import app

    owner = {c: "worker-2" if c == moved else "worker-1" for c in VIDEOS}
    _, key = services.access.create_key(name="workers-test", role="viewer")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(services)) as client:
        cams = client.get("/api/v1/cameras", headers=auth).json()["cameras"]
        listed = client.get("/api/v1/workers", headers=auth).json()["workers"]
        metrics = client.get("/metrics", headers=auth).text
    assert {c["id"]: c["lease"]["worker"] for c in cams} == owner
    assert all(c["lease"]["host"] == socket.gethostname() and c["lease"]["live"] for c in cams)
    assert {w["id"]: len(w["cameras"]) for w in listed} == {"worker-1": 2, "worker-2": 1}
    assert 'surveil_worker_cameras{host="' in metrics
    assert 'worker="worker-1"} 2.0' in metrics

    monkeypatch.setenv("SURVEIL_DATABASE__URL", services.settings.database_url)
    monkeypatch.setenv("SURVEIL_STORAGE__ROOT", str(services.settings.storage.root))
    status = CliRunner().invoke(app, ["cameras", "status", "--json"])
    assert status.exit_code == 0, status.output
    board = json.loads(status.stdout)
    assert {c["id"]: c["lease"]["worker"] for c in board["cameras"]} == owner
    assert [w["id"] for w in board["workers"]] == ["worker-1", "worker-2"]
    text = CliRunner().invoke(app, ["cameras", "workers"])
    assert text.exit_code == 0 and f"cameras={moved}" in text.stdout, text.output


def _keyframes(url: str) -> dict[str, int]:
    rows = catalog_rows(url, "SELECT camera_id, count(*) FROM keyframes GROUP BY camera_id")
    return {str(c): int(n) for c, n in rows}


def test_two_workers_split_three_cameras_and_a_stopped_one_hands_over(
    workers: tuple[Services, Services], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s1, s2 = workers
    w1 = LiveService(s1, check_shared_index=False)
    w2 = LiveService(s2, check_shared_index=False)
    w1.start()
    overlap = Overlap(w1, w2)
    stopped = [False, False]
    try:
        assert w1.reading == set(VIDEOS)
        _wait("worker-1 to commit keyframes", lambda: w1.totals.keyframes >= 3)
        w2.start()
        _wait("a 2/1 split", lambda: len(w1.reading) == 2 and len(w2.reading) == 1)
        [moved] = w2.reading
        _wait("worker-2 to commit its camera", lambda: w2.stats[moved].keyframes > 0)
        _check_board(s2, moved, monkeypatch)
        before = _keyframes(pg_url)
        assert set(before) == set(VIDEOS)
        stopped[0] = True
        w1.stop()
        took = _wait("worker-2 to read every camera", lambda: w2.reading == set(VIDEOS), 30)
        taken = sorted(set(VIDEOS) - {moved})
        _wait(
            "worker-2 to commit the cameras it took over",
            lambda: all(w2.stats[c].keyframes > 0 for c in taken),
        )
    finally:
        if not stopped[0]:
            w1.stop()
        report = w2.stop()
        both = overlap.close()
    assert both == [], f"cameras read by two workers at once: {both}"
    assert took < LEASE_S, f"a clean stop handed over in {took:.1f}s (lease {LEASE_S}s)"
    assert report.clean
    after = _keyframes(pg_url)
    assert all(after[c] > before[c] for c in taken)
    assert s2.leases.leases() == [] and s2.leases.workers() == []
    health = {h.camera_id: h.state for h in s2.health.read()}
    assert health == dict.fromkeys(VIDEOS, "stopped")


def test_a_second_worker_is_refused_while_the_index_is_local_faiss(
    workers: tuple[Services, Services],
) -> None:
    s1, s2 = workers
    w1 = LiveService(s1)
    w1.keeper.register()  # registered as a faiss worker; no models needed for the check
    s1.leases.heartbeat("worker-1", now=datetime.now(UTC), lease=timedelta(seconds=LEASE_S))
    try:
        with pytest.raises(ConfigError, match=r"set index\.backend: milvus") as info:
            LiveService(s2).start()
        assert "worker-1" in str(info.value)
    finally:
        w1.keeper.close()
    assert s1.leases.workers() == []
