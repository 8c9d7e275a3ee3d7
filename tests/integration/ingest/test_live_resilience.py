"""Live ingest on real parts: real streams dying, a real PostgreSQL restarting.

One set of services (real models, a fresh PostgreSQL database) serves the module, so the
models load once; each test runs its own `LiveService` with its own cameras. Cameras are
looping files (no server), an HTTP MPEG-TS stream (ffmpeg) and an RTSP stream (GStreamer's
RTSP server), from tests/streams.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from catalog_sql import catalog_rows
from conftest import fresh_pg_database
from streams import HttpStreamFactory, PostgresCluster, RtspStreamFactory

from surveil.config import CameraSettings, load_settings
from surveil.container import Services, build_services
from surveil.domain import SPACES
from surveil.index.sharded import ShardedFaissIndex
from surveil.ingest.live.cameras import live_cameras
from surveil.ingest.live.service import LiveService
from surveil.storage.migrate import upgrade
from surveil.telemetry import PROCESS

LOBBY = "videos/intel_sample_videos/one-by-one-person-detection.mp4"
LOT = "videos/intel_sample_videos/car-detection.mp4"
SECRET = "s3cr3t-Pa55"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def services(
    pg_server: str, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    """Real models and a fresh PostgreSQL catalog, shared by the module's tests."""
    models = shared_data / "models"
    root = tmp_path_factory.mktemp("live")
    with fresh_pg_database(pg_server) as url:
        upgrade(url)
        settings = load_settings(
            overrides={
                "storage.root": str(root / "data"),
                "database.url": url,
                "model_dir": str(models),
                "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
                "live.stall_seconds": 3.0,
                "live.open_timeout_seconds": 3.0,
                "live.backoff_seconds": 0.3,
                "live.backoff_max_seconds": 1.5,
                "live.health_seconds": 0.5,
                "live.write_retry_seconds": 0.3,
                "live.shutdown_seconds": 15.0,
                "live.from_catalog": False,
            }
        )
        built = build_services(settings)
        built.ingest_pipeline().warm_up()  # load the models once for every test here
        try:
            yield built
        finally:
            built.close()


def _service(services: Services, cameras: dict[str, str]) -> LiveService:
    settings = services.settings.model_copy(
        update={"cameras": [CameraSettings(id=c, url=u) for c, u in cameras.items()]}
    )
    env = {"CAM_SECRET": SECRET}
    return LiveService(services, live_cameras(settings, env=env))


def _wait(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _index_ids(services: Services) -> set[int]:
    """Track ids in the index as saved on disk (what a fresh process would load)."""
    index = ShardedFaissIndex(services.settings.storage.root / "index")
    return {int(i) for s in SPACES for ids in index.ids_by_day(s).values() for i in ids}


def _catalog_ids(services: Services, cameras: list[str]) -> set[int]:
    rows = catalog_rows(
        services.settings.database_url,
        "SELECT id FROM tracks WHERE camera_id = ANY(:c)",
        {"c": cameras},
    )
    return {int(r[0]) for r in rows}


def test_a_killed_stream_reconnects_records_its_gap_and_others_keep_flowing(
    services: Services,
    shared_data: Path,
    http_stream_factory: HttpStreamFactory,
    rtsp_stream_factory: RtspStreamFactory,
) -> None:
    http = http_stream_factory(shared_data / LOT)
    rtsp = rtsp_stream_factory(shared_data / LOBBY)
    rtsp_url = rtsp.url.replace("rtsp://", "rtsp://viewer:${CAM_SECRET}@", 1)
    live = _service(
        services,
        {"k-file": str(shared_data / LOBBY), "k-http": http.url, "k-rtsp": rtsp_url},
    )
    live.start()
    try:
        st = live.stats
        _wait("every camera online", lambda: all(s.frames > 20 for s in st.values()))
        _wait("a committed keyframe", lambda: st["k-file"].keyframes > 0, timeout=90)
        http.stop()
        rtsp.stop()
        down_at = (st["k-file"].frames, st["k-file"].selected)
        _wait("the killed cameras to go offline", lambda: st["k-http"].state == "offline")
        _wait("the RTSP camera to go offline", lambda: st["k-rtsp"].state == "offline")
        # The file camera never stopped while the two streams were down (waited for, not
        # slept for: on a loaded CI machine 20 frames can take more than a couple of seconds).
        _wait("file frames meanwhile", lambda: st["k-file"].frames > down_at[0] + 20)
        _wait("file keyframes meanwhile", lambda: st["k-file"].selected > down_at[1])
        frames_before = st["k-http"].frames, st["k-rtsp"].frames
        http.start()
        rtsp.start()
        _wait("HTTP frames again", lambda: st["k-http"].frames > frames_before[0] + 10)
        _wait("RTSP frames again", lambda: st["k-rtsp"].frames > frames_before[1] + 10)
        assert st["k-http"].reconnects >= 1 and st["k-rtsp"].reconnects >= 1
    finally:
        report = live.stop()
    assert report.clean
    gaps = {g.camera_id: g for g in services.health.gaps()}
    assert {"k-http", "k-rtsp"} <= set(gaps)
    for cam in ("k-http", "k-rtsp"):
        assert gaps[cam].end_ts - gaps[cam].start_ts > timedelta(seconds=1)
    assert "k-file" not in gaps
    health = {h.camera_id: h for h in services.health.read()}
    assert SECRET not in (health["k-rtsp"].last_error or "")
    assert all(SECRET not in str(h) for h in health.values())
    # Everything committed is in the saved index, and nothing else.
    cams = ["k-file", "k-http", "k-rtsp"]
    assert _catalog_ids(services, cams) <= _index_ids(services)
    assert live.totals.keyframes > 0
    _check_api_and_metrics(services, "k-rtsp")


def _check_api_and_metrics(services: Services, camera: str) -> None:
    """/api/v1/cameras carries each camera's health (URL and error masked); so do metrics."""
    from fastapi.testclient import TestClient

    from surveil.api.app import create_app

    services.catalog.update_camera(camera, url=f"rtsp://viewer:{SECRET}@10.0.0.7/s")
    _, key = services.access.create_key(name="live-test", role="viewer")
    with TestClient(create_app(services)) as client:
        resp = client.get("/api/v1/cameras", headers={"Authorization": f"Bearer {key}"})
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text
    assert resp.status_code == 200, resp.text
    assert SECRET not in resp.text
    cams = {c["id"]: c for c in resp.json()["cameras"]}
    assert cams[camera]["url"] == "rtsp://viewer:***@10.0.0.7/s"
    health = cams[camera]["health"]
    assert health["state"] == "stopped" and health["reconnects"] >= 1
    assert health["keyframes"] >= 0 and "last_frame_at" in health
    assert f'surveil_camera_state{{camera="{camera}",state="stopped"}} 1.0' in metrics
    assert f'surveil_camera_reconnects{{camera="{camera}"}}' in metrics


def _process_samples() -> dict[tuple[str, str], float]:
    """This process's series as `surveil run` serves them (surveil.telemetry.PROCESS)."""
    return {
        (s.name, s.labels.get("queue", "")): s.value
        for family in PROCESS.collect()
        for s in family.samples
    }


def _max_write_queue(seconds: float) -> float:
    """The highest `surveil_ingest_queue_depth{queue="write"}` seen over `seconds`."""
    deadline, seen = time.monotonic() + seconds, 0.0
    while time.monotonic() < deadline:
        seen = max(seen, _process_samples().get(("surveil_ingest_queue_depth", "write"), 0.0))
        time.sleep(0.1)
    return seen


def _query_errors() -> float:
    """Failed statements of every error class (one series per class, so not via a dict)."""
    return sum(
        s.value
        for family in PROCESS.collect()
        for s in family.samples
        if s.name == "surveil_catalog_query_errors_total"
    )


def test_a_postgres_restart_pauses_writing_and_loses_nothing(
    services: Services,
    shared_data: Path,
    postgres_cluster: PostgresCluster,
) -> None:
    cameras = {"p-lobby": str(shared_data / LOBBY), "p-lot": str(shared_data / LOT)}
    live = _service(services, cameras)
    counted = _process_samples()
    live.start()
    try:
        _wait("committed keyframes", lambda: live.totals.keyframes >= 8, timeout=90)
        before = _catalog_ids(services, ["p-lobby", "p-lot"])
        assert before
        errors_before = _query_errors()
        with postgres_cluster.outage() as outage:
            # The models keep working; commits wait in the buffer, and /metrics says so.
            waiting = _max_write_queue(seconds=4.0)
        assert waiting >= 1
        assert _query_errors() > errors_before
        committed_at_restart = live.totals.keyframes
        _wait(
            "writing to resume",
            lambda: live.totals.keyframes > committed_at_restart + 4,
            timeout=90,
        )
    finally:
        report = live.stop()
    assert outage.seconds >= 4.0
    assert report.clean
    after = _catalog_ids(services, ["p-lobby", "p-lot"])
    assert before <= after, "rows committed before the restart were lost"
    assert len(after) > len(before)
    assert after <= _index_ids(services)
    assert live.totals.buffer_drops == 0
    # What `surveil run` serves on live.metrics_port moved with the work.
    now = _process_samples()

    def moved(name: str) -> float:
        key = (f"surveil_ingest_{name}_total", "")
        return now.get(key, 0.0) - counted.get(key, 0.0)

    assert moved("frames") > 0
    assert moved("keyframes") == live.totals.keyframes


def test_a_full_pending_queue_drops_the_oldest_and_metrics_count_it(
    services: Services, shared_data: Path
) -> None:
    """Models slower than the cameras: a one-slot queue drops the oldest keyframe, and the
    drop shows in the totals, in the camera's health and in `/metrics` over real HTTP."""
    import urllib.request
    from dataclasses import replace

    from prometheus_client.parser import text_string_to_metric_families

    from surveil.telemetry import serve_process_metrics

    live_settings = services.settings.live.model_copy(update={"pending_size": 1})
    tight = replace(services, settings=services.settings.model_copy(update={"live": live_settings}))
    server = serve_process_metrics(0, addr="127.0.0.1")

    def pending_drops() -> float:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
            if s.name == "surveil_ingest_drops_total" and s.labels.get("queue") == "pending"
        )

    try:
        before = pending_drops()
        cameras = {"d-lobby": str(shared_data / LOBBY), "d-lot": str(shared_data / LOT)}
        live = _service(tight, cameras)
        live.start()
        try:
            _wait("a dropped keyframe", lambda: live.totals.pending_drops > 0, timeout=90)
        finally:
            report = live.stop()
        dropped = live.totals.pending_drops
        assert pending_drops() - before == dropped  # every drop counted, once
    finally:
        server.shutdown()
    assert report.clean
    health = {h.camera_id: h for h in services.health.read()}
    assert sum(health[c].drops for c in cameras) >= dropped
