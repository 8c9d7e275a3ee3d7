"""Fair shares of cameras between live workers: split, pins, hand-back without flapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from surveil.ingest.live.shares import plan_share
from surveil.storage.leases import CameraLease, WorkerInfo

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
LIVE = NOW + timedelta(seconds=10)
GONE = NOW - timedelta(seconds=1)


def _w(wid: str, cameras: tuple[str, ...] = (), tags: tuple[str, ...] = ()) -> WorkerInfo:
    return WorkerInfo(wid, "h", 1, NOW, NOW, LIVE, cameras, tags)


def _leases(**owners: str) -> dict[str, CameraLease]:
    return {c: CameraLease(c, o, NOW, NOW, LIVE) for c, o in owners.items()}


CAMS3 = {"a": (), "b": (), "c": ()}


def test_a_lone_worker_takes_every_camera() -> None:
    plan = plan_share(me=_w("w1"), cameras=CAMS3, workers=[], leases={}, held=(), now=NOW)
    assert (plan.share, plan.claim, plan.release) == (3, ["a", "b", "c"], [])


def test_two_workers_split_three_cameras_two_and_one_and_stay_so() -> None:
    w1, w2 = _w("w1"), _w("w2")
    # w1 held everything; w2 arrives: w1 gives back exactly one, w2 takes it.
    first = plan_share(
        me=w1,
        cameras=CAMS3,
        workers=[w1, w2],
        leases=_leases(a="w1", b="w1", c="w1"),
        held={"a", "b", "c"},
        now=NOW,
    )
    assert (first.share, first.release, first.claim) == (2, ["c"], [])
    after = _leases(a="w1", b="w1")
    second = plan_share(me=w2, cameras=CAMS3, workers=[w1, w2], leases=after, held=(), now=NOW)
    assert second.claim == ["c"]
    # Settled 2/1: nobody moves, and w1 does not reclaim c while it cools down.
    settled = _leases(a="w1", b="w1", c="w2")
    for me, held in ((w1, {"a", "b"}), (w2, {"c"})):
        plan = plan_share(
            me=me, cameras=CAMS3, workers=[w1, w2], leases=settled, held=held, now=NOW
        )
        assert (plan.claim, plan.release) == ([], [])
    cooling = plan_share(
        me=w1,
        cameras=CAMS3,
        workers=[w1, w2],
        leases=after,
        held={"a", "b"},
        now=NOW,
        cooling={"c"},
    )
    assert cooling.claim == []


def test_expired_and_dead_owners_cameras_are_free_live_ones_are_not() -> None:
    w1 = _w("w1")
    leases = _leases(a="w9", b="w8", c="w7")
    leases["a"] = CameraLease("a", "w9", NOW, NOW, GONE)  # expired
    plan = plan_share(
        me=w1, cameras=CAMS3, workers=[w1], leases=leases, held=(), now=NOW, dead={"w8"}
    )
    assert plan.claim == ["a", "b"]


def test_pins_limit_what_a_worker_takes_and_who_shares() -> None:
    cams = {"a": ("heavy",), "b": (), "c": ()}
    gpu = _w("gpu", tags=("heavy",))
    cpu = _w("cpu", cameras=("b", "c"))
    # The GPU worker may read only a; the CPU worker b and c: nobody competes for a.
    mine = {c: t for c, t in cams.items() if gpu.eligible(c, t)}
    plan = plan_share(me=gpu, cameras=mine, workers=[gpu, cpu], leases={}, held=(), now=NOW)
    assert (plan.share, plan.claim) == (1, ["a"])
    theirs = {c: t for c, t in cams.items() if cpu.eligible(c, t)}
    plan = plan_share(me=cpu, cameras=theirs, workers=[gpu, cpu], leases={}, held=(), now=NOW)
    assert (plan.share, plan.claim) == (2, ["b", "c"])


def test_a_starving_worker_gets_one_camera_from_the_busiest_only() -> None:
    cams = dict.fromkeys("abcd", ())
    w1, w2, w3 = _w("w1"), _w("w2"), _w("w3")
    leases = _leases(a="w1", b="w1", c="w2", d="w2")
    workers = [w1, w2, w3]
    busiest = plan_share(
        me=w1, cameras=cams, workers=workers, leases=leases, held={"a", "b"}, now=NOW
    )
    other = plan_share(
        me=w2, cameras=cams, workers=workers, leases=leases, held={"c", "d"}, now=NOW
    )
    assert (busiest.share, busiest.release, other.release) == (2, ["b"], [])
    starving = plan_share(
        me=w3,
        cameras=cams,
        workers=workers,
        leases=_leases(a="w1", c="w2", d="w2"),
        held=(),
        now=NOW,
    )
    assert starving.claim == ["b"]
