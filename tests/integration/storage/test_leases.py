"""SqlLeases on real SQLite and PostgreSQL: claim, renew, expiry, release, races."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.leases import SqlLeases, WorkerInfo
from surveil.storage.migrate import upgrade

T0 = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
LEASE = timedelta(seconds=15)


@pytest.fixture
def leases(database_url: str) -> Iterator[SqlLeases]:
    upgrade(database_url)
    engine = make_engine(database_url, pool_size=8)
    try:
        yield SqlLeases(make_session_factory(engine))
    finally:
        engine.dispose()


def _worker(wid: str, now: datetime = T0, **pins: tuple[str, ...]) -> WorkerInfo:
    return WorkerInfo(wid, "host-a", 1234, now, now, now + LEASE, **pins)  # type: ignore[arg-type]


def test_a_free_camera_is_claimed_once_and_renewed_only_by_its_owner(leases: SqlLeases) -> None:
    assert leases.claim("gate", owner="w1", now=T0, lease=LEASE)
    assert not leases.claim("gate", owner="w2", now=T0 + timedelta(seconds=5), lease=LEASE)
    later = T0 + timedelta(seconds=10)
    assert leases.renew("w1", {"gate", "lot"}, now=later, lease=LEASE) == {"gate"}
    assert leases.renew("w2", {"gate"}, now=later, lease=LEASE) == set()
    [lease] = leases.leases()
    assert (lease.owner, lease.acquired_at, lease.renewed_at) == ("w1", T0, later)
    assert lease.lease_until == later + LEASE


def test_an_expired_lease_is_taken_over_and_the_old_owner_learns_it(leases: SqlLeases) -> None:
    assert leases.claim("gate", owner="w1", now=T0, lease=LEASE)
    expired = T0 + LEASE + timedelta(seconds=1)
    assert leases.claim("gate", owner="w2", now=expired, lease=LEASE)
    # w1 comes back after an outage: its renewal says the camera is no longer its own.
    assert leases.renew("w1", {"gate"}, now=expired, lease=LEASE) == set()
    assert leases.release("w1", {"gate"}) == 0  # nor can it release w2's lease
    assert [(x.camera_id, x.owner, x.acquired_at) for x in leases.leases()] == [
        ("gate", "w2", expired)
    ]


def test_an_expired_lease_nobody_took_is_still_renewed_by_its_owner(leases: SqlLeases) -> None:
    assert leases.claim("gate", owner="w1", now=T0, lease=LEASE)
    late = T0 + LEASE * 3
    assert leases.renew("w1", {"gate"}, now=late, lease=LEASE) == {"gate"}
    assert not leases.claim("gate", owner="w2", now=late, lease=LEASE)


def test_a_dead_owners_live_lease_is_taken_over_at_once(leases: SqlLeases) -> None:
    assert leases.claim("gate", owner="dead", now=T0, lease=LEASE)
    now = T0 + timedelta(seconds=1)
    assert not leases.claim("gate", owner="w2", now=now, lease=LEASE, dead_owner="someone")
    assert leases.claim("gate", owner="w2", now=now, lease=LEASE, dead_owner="dead")


def test_release_and_deregister_free_cameras_for_the_others(leases: SqlLeases) -> None:
    leases.register(_worker("w1"))
    for cam in ("a", "b", "c"):
        assert leases.claim(cam, owner="w1", now=T0, lease=LEASE)
    assert leases.release("w1", {"a"}) == 1
    assert leases.claim("a", owner="w2", now=T0, lease=LEASE)
    assert leases.held_counts(now=T0) == {"w1": 2, "w2": 1}
    assert leases.deregister("w1") == ["b", "c"]
    assert leases.workers() == []
    assert leases.claim("b", owner="w2", now=T0, lease=LEASE)
    assert leases.held_counts(now=T0) == {"w2": 2}


def test_workers_register_heartbeat_expire_and_are_pruned(leases: SqlLeases) -> None:
    leases.register(_worker("w1", cameras=("gate",), camera_tags=("gpu", "heavy")))
    leases.register(_worker("w2"))
    leases.register(_worker("w2"))  # a second register of one id refreshes, never fails
    [w1, w2] = leases.workers(now=T0)
    assert (w1.cameras, w1.camera_tags, w1.host, w1.pid) == (
        ("gate",),
        ("gpu", "heavy"),
        "host-a",
        1234,
    )
    assert w1.eligible("gate", ["gpu"]) and not w1.eligible("gate", ["cpu"])
    assert not w1.eligible("lot", ["gpu"]) and w2.eligible("lot", [])
    later = T0 + LEASE + timedelta(seconds=1)
    assert leases.heartbeat("w2", now=later, lease=LEASE)
    assert [w.id for w in leases.workers(now=later)] == ["w2"]
    assert leases.prune(now=later) == 1
    assert not leases.heartbeat("w1", now=later, lease=LEASE)  # gone: must register again
    assert leases.prune(now=later, dead=["w2"]) == 1
    assert leases.workers() == []


def _race(leases: SqlLeases, owners: list[str], cameras: list[str]) -> Counter[str]:
    """Every owner claims every camera at the same moment; returns the winners."""
    barrier = threading.Barrier(len(owners))
    won: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claim_all(owner: str) -> None:
        barrier.wait()
        for cam in cameras:
            if leases.claim(cam, owner=owner, now=T0 + LEASE * 2, lease=LEASE):
                with lock:
                    won.append((cam, owner))

    threads = [threading.Thread(target=claim_all, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(cam for cam, _ in won) == Counter(cameras), f"a camera won twice: {won}"
    return Counter(owner for _, owner in won)


def test_owners_racing_on_postgresql_never_both_win_a_camera(pg_url: str) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url, pool_size=8)
    try:
        leases = SqlLeases(make_session_factory(engine))
        cameras = [f"cam{i}" for i in range(12)]
        owners = [f"w{i}" for i in range(6)]
        _race(leases, owners, cameras)  # fresh cameras: INSERT races
        # Expire them all (claimed at T0 + 2 leases), then race for the takeover: UPDATEs.
        for cam in cameras:
            assert leases.renew(
                next(x.owner for x in leases.leases() if x.camera_id == cam),
                {cam},
                now=T0,
                lease=LEASE,
            ) == {cam}
        _race(leases, owners, cameras)
        assert {x.camera_id for x in leases.leases()} == set(cameras)
    finally:
        engine.dispose()
