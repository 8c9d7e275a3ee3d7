"""Workers sharing cameras through leases on a real PostgreSQL, with short leases.

Each `LeaseKeeper` runs its real threads against the real catalog tables; the camera
side is a `Readers` record of what the keeper asked the live service to start and stop
(the LiveService test in test_live_workers.py runs the whole thing with models).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from surveil.domain import ConfigError
from surveil.ingest.live.leases import LeaseKeeper
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.leases import SqlLeases, WorkerInfo
from surveil.storage.migrate import upgrade

LEASE_S = 1.5
CAMS = {"a": (), "b": (), "c": ()}

pytestmark = pytest.mark.timeout(120)


class Readers:
    """What a keeper asked for: cameras read now, and every stop with its kind."""

    def __init__(self) -> None:
        self.reading: set[str] = set()
        self.stops: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def start_camera(self, camera_id: str) -> None:
        with self._lock:
            assert camera_id not in self.reading, f"{camera_id} started twice"
            self.reading.add(camera_id)

    def stop_camera(self, camera_id: str, *, drop_pending: bool) -> None:
        with self._lock:
            self.reading.discard(camera_id)
            self.stops.append((camera_id, "lost" if drop_pending else "expired"))

    def hand_back(self, camera_id: str, *, timeout: float) -> None:
        with self._lock:
            self.reading.discard(camera_id)
            self.stops.append((camera_id, "handed back"))


@pytest.fixture
def leases(pg_url: str) -> Iterator[SqlLeases]:
    upgrade(pg_url)
    engine = make_engine(pg_url, pool_size=8)
    try:
        yield SqlLeases(make_session_factory(engine))
    finally:
        engine.dispose()


def _keeper(
    leases: SqlLeases, wid: str, *, backend: str = "milvus", tags: tuple[str, ...] = ()
) -> tuple[LeaseKeeper, Readers]:
    now = datetime.now(UTC)
    worker = WorkerInfo(wid, "host", 1, now, now, now, camera_tags=tags, index_backend=backend)
    readers = Readers()
    keeper = LeaseKeeper(leases, readers, worker=worker, cameras=CAMS, lease_seconds=LEASE_S)
    return keeper, readers


def _wait(what: str, check: Callable[[], bool], timeout: float = 15.0) -> float:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - began


@contextmanager
def _running(keeper: LeaseKeeper) -> Iterator[LeaseKeeper]:
    keeper.register()
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.close()


def _disjoint(*readers: Readers) -> bool:
    seen = [c for r in readers for c in set(r.reading)]
    return len(seen) == len(set(seen))


def test_two_workers_split_the_cameras_and_a_stopped_one_hands_over(leases: SqlLeases) -> None:
    k1, r1 = _keeper(leases, "w1")
    k2, r2 = _keeper(leases, "w2")
    with _running(k1):
        assert r1.reading == set(CAMS)  # a lone worker reads everything from the start
        k2.register()  # still loading its models: nobody hands it a camera yet
        time.sleep(LEASE_S)
        assert r1.reading == set(CAMS) and r1.stops == []
        with _running(k2):
            # A few rounds normally (~2 s); generous because a loaded CI box starves threads.
            _wait("a 2/1 split", lambda: len(r1.reading) == 2 and len(r2.reading) == 1, timeout=45)
            assert _disjoint(r1, r2)
            time.sleep(LEASE_S * 2)  # several rounds: the split holds, nothing flaps
            assert len(r1.reading) == 2 and len(r2.reading) == 1
            assert [kind for _, kind in r1.stops] == ["handed back"]
            held = {x.camera_id: x.owner for x in leases.leases()}
            assert held == {c: "w1" if c in r1.reading else "w2" for c in CAMS}
            status = {w.id for w in leases.workers(now=datetime.now(UTC))}
            assert status == {"w1", "w2"}
            k1.close()  # a clean stop releases at once ...
            took = _wait("w2 to read every camera", lambda: r2.reading == set(CAMS))
    assert took < LEASE_S  # ... so the survivor takes over within a round, not a lease
    assert leases.leases() == [] and leases.workers() == []


def test_a_killed_workers_cameras_move_within_the_lease(leases: SqlLeases) -> None:
    k1, _ = _keeper(leases, "w1")
    k2, r2 = _keeper(leases, "w2")
    k1.register()
    k1.start()
    k1.halt()  # killed: no more renewals, nothing released
    killed = time.monotonic()
    with _running(k2):
        _wait("w2 to take every camera", lambda: r2.reading == set(CAMS), timeout=LEASE_S * 4)
        took = time.monotonic() - killed
    assert took <= LEASE_S + 0.5, f"took {took:.2f}s for a {LEASE_S}s lease"


def test_a_second_worker_on_a_local_faiss_index_is_refused(leases: SqlLeases) -> None:
    k1, _ = _keeper(leases, "w1", backend="faiss")
    with _running(k1):
        k2, r2 = _keeper(leases, "w2", backend="faiss")
        with pytest.raises(ConfigError, match=r"index\.backend: milvus") as info:
            k2.register()
        assert "\n" not in str(info.value) and "w1" in str(info.value)
        k3, _ = _keeper(leases, "w3", backend="milvus")  # shared backend, but w1 is local
        with pytest.raises(ConfigError, match="faiss"):
            k3.register()
    assert r2.reading == set() and [w.id for w in leases.workers()] == []


def test_pinned_workers_read_only_their_tagged_cameras(leases: SqlLeases) -> None:
    heavy = {"a": ("heavy",), "b": (), "c": ()}
    now = datetime.now(UTC)
    gpu = WorkerInfo("gpu", "h", 1, now, now, now, camera_tags=("heavy",), index_backend="milvus")
    r_gpu = Readers()
    mine = {c: t for c, t in heavy.items() if gpu.eligible(c, t)}
    k_gpu = LeaseKeeper(leases, r_gpu, worker=gpu, cameras=mine, lease_seconds=LEASE_S)
    with _running(k_gpu):
        assert r_gpu.reading == {"a"}
        time.sleep(LEASE_S)
        assert r_gpu.reading == {"a"}


def test_a_lease_taken_by_another_worker_stops_the_reader_at_once(leases: SqlLeases) -> None:
    k1, r1 = _keeper(leases, "w1")
    with _running(k1):
        # Another worker saw w1 as dead (a partition, say) and took camera a.
        assert leases.claim(
            "a", owner="thief", now=datetime.now(UTC), lease=k1._lease, dead_owner="w1"
        )
        _wait("w1 to stop reading a", lambda: "a" not in r1.reading, timeout=LEASE_S)
        assert ("a", "lost") in r1.stops
        assert r1.reading == {"b", "c"}


@contextmanager
def _database_refuses_connections(url: str) -> Iterator[None]:
    """This one database only (the shared server keeps serving everyone else)."""
    name = url.rpartition("/")[2]
    admin = url.replace("postgresql+psycopg://", "postgresql://", 1).rpartition("/")[0] + "/test"
    with psycopg.connect(admin, autocommit=True) as conn:
        db = sql.Identifier(name)
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(db))
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            yield
        finally:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(db))


def test_with_the_catalog_away_reading_stops_when_the_lease_would_expire(
    leases: SqlLeases, pg_url: str
) -> None:
    k1, r1 = _keeper(leases, "w1")
    with _running(k1):
        with _database_refuses_connections(pg_url):
            down = time.monotonic()
            _wait("the readers to stop", lambda: not r1.reading, timeout=LEASE_S * 4)
            took = time.monotonic() - down
            assert {kind for _, kind in r1.stops} == {"expired"}
        assert took <= LEASE_S, f"read {took:.2f}s past a {LEASE_S}s lease it could not renew"
        assert took >= LEASE_S / 3  # it did keep reading while the lease was valid
        _wait("the cameras to be claimed again", lambda: r1.reading == set(CAMS))


def test_a_restart_right_after_a_crash_on_this_host_is_not_refused(leases: SqlLeases) -> None:
    """`surveil run` killed -9 and started again: the dead worker is no obstacle.

    Its registration and leases still look live for a lease, but this host can see its
    process is gone: the new worker prunes it and takes its cameras over at once.
    """
    import socket
    import subprocess
    import sys

    from surveil.jobs.runner import pid_namespace

    pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dead_id = f"{socket.gethostname()}:{pid}:dead01.{pid_namespace()}"
    now = datetime.now(UTC)
    lease = timedelta(hours=1)  # would block everything for an hour if it were believed
    leases.register(WorkerInfo(dead_id, "h", int(pid), now, now, now + lease))
    for cam in CAMS:
        assert leases.claim(cam, owner=dead_id, now=now, lease=lease)
    k2, r2 = _keeper(leases, "w2", backend="faiss")
    with _running(k2):
        assert r2.reading == set(CAMS)
        assert [w.id for w in leases.workers()] == ["w2"]
