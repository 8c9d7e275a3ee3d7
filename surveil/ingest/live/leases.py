"""The camera leases of one `surveil run` worker: claim, renew, hand back, let go.

Any number of workers on any hosts share one catalog's cameras: a worker reads a camera
only while it holds the camera's lease (catalog table camera_leases). Every third of
`live.lease_seconds` it heartbeats, renews what it holds, and claims free cameras up to
its fair share (surveil.ingest.live.shares). What can happen to a held camera:

- over its share: handed back cleanly - reader stopped, its keyframes committed, a last
  'stopped' health row written, lease released - and not reclaimed for a cool-down;
- renewal finds another owner (after a partition, say): the reader stops at once and the
  camera's keyframes still waiting for the models are dropped (logged), so no camera is
  ever read by two workers;
- the catalog is unreachable: reading goes on until the lease this worker last wrote
  would expire (less a safety margin), then the reader stops - ownership can no longer
  be proven; once the catalog is back, the camera is claimed again like any free one.

On a clean stop the worker deregisters, releasing every lease at once, so the others
take over at their next round; a killed worker's leases simply expire.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy.exc import SQLAlchemyError

from surveil.config import Settings
from surveil.domain import ConfigError
from surveil.ingest.live.health import safe_error
from surveil.ingest.live.shares import plan_share
from surveil.jobs.runner import dead_local_owner, runner_id, utc_now
from surveil.storage.leases import CameraLease, SqlLeases, WorkerInfo

log = structlog.get_logger(__name__)

#: Rounds per lease: renewing every third of it survives two missed rounds.
ROUNDS_PER_LEASE = 3
#: How often the expiry watchdog looks (it must act even while a round hangs on the DB).
WATCH_SECONDS = 0.25
#: Longest pause between rounds while the catalog is unreachable.
RETRY_SECONDS = 1.0
#: Longest pause between rounds while below the fair share: a stopped worker's cameras
#: are taken this soon after it released them (a few cheap queries a second at most).
HUNGRY_SECONDS = 1.0


def this_worker(settings: Settings) -> WorkerInfo:
    """This process as a worker: its id (`live.worker_id` or host:pid:tag), pins, backend."""
    now = utc_now()
    live = settings.live
    return WorkerInfo(
        id=live.worker_id or runner_id(),
        host=socket.gethostname(),
        pid=os.getpid(),
        started_at=now,
        heartbeat_at=now,
        lease_until=now,
        cameras=tuple(live.cameras),
        camera_tags=tuple(live.camera_tags),
        # Another engineer adds index.backend (faiss | milvus); until then it is faiss.
        index_backend=str(getattr(settings.index, "backend", "faiss")),
    )


def refuse_local_index_sharing(leases: SqlLeases, *, me: WorkerInfo, now: datetime) -> None:
    """ConfigError when another live worker runs and either one keeps vectors in local files.

    Two workers on FAISS would each hold half of the index in their own files; `surveil
    run` checks before loading models, and again once registered (two starting at once).
    """
    others = [w for w in leases.workers(now=now) if w.id != me.id and not dead_local_owner(w.id)]
    local = [w for w in others if w.index_backend == "faiss"]
    if others and (me.index_backend == "faiss" or local):
        other = (local or others)[0]
        left = max(0.0, (other.lease_until - now).total_seconds())
        raise ConfigError(
            f"another live worker ({other.id}) already ingests into this catalog and "
            "index.backend is faiss, whose vectors live in one process's files: set "
            "index.backend: milvus on every worker to share the cameras, or run one "
            f"worker (a dead one's registration expires within {left:.0f} s)"
        )


class CameraControl(Protocol):
    """What the keeper asks of the live service: start and stop one camera's reader."""

    def start_camera(self, camera_id: str) -> None: ...

    def stop_camera(self, camera_id: str, *, drop_pending: bool) -> None: ...

    def hand_back(self, camera_id: str, *, timeout: float) -> None: ...


class LeaseKeeper:
    """Holds this worker's camera leases in step with the catalog, on its own threads."""

    def __init__(
        self,
        leases: SqlLeases,
        control: CameraControl,
        *,
        worker: WorkerInfo,
        cameras: Mapping[str, Collection[str]],
        lease_seconds: float,
        check_index: bool = True,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._leases = leases
        self._control = control
        self.worker = worker
        self._cameras = {c: tuple(t) for c, t in cameras.items()}
        self._lease_s = lease_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._check_index = check_index
        self._clock = clock
        self._interval = lease_seconds / ROUNDS_PER_LEASE
        # Stop reading this long before the lease would expire: clocks differ a little.
        self._margin = min(1.0, lease_seconds / 10)
        self._lock = threading.RLock()
        self._held: dict[str, float] = {}  # camera -> monotonic time its lease runs out
        self._cooling: dict[str, float] = {}  # handed back -> not reclaimed until then
        self._stop = threading.Event()
        self._outage_since: float | None = None
        self._threads = [
            threading.Thread(target=self._rounds, name="live-leases", daemon=True),
            threading.Thread(target=self._watch, name="live-lease-watch", daemon=True),
        ]

    @property
    def held(self) -> set[str]:
        """The cameras this worker holds (and reads) right now."""
        with self._lock:
            return set(self._held)

    def register(self) -> None:
        """Forget dead workers, register this one; refuse to share a local (FAISS) index.

        The row is written already expired: until `start` (models loaded, ready to read)
        the others do not count this worker, so they hand it no camera it cannot read
        yet. Raises ConfigError when another worker runs and either one keeps its
        vectors in local files: two such workers would each hold half of the index.
        """
        now = self._clock()
        dead = [w.id for w in self._leases.workers() if dead_local_owner(w.id)]
        self._leases.prune(now=now, dead=dead)
        self.worker = replace(self.worker, heartbeat_at=now, lease_until=now)
        self._leases.register(self.worker)
        if self._check_index:
            self._refuse_local_index_sharing(now)

    def start(self) -> None:
        """Become visible, claim a first share now (a lone worker reads everything), run."""
        now = self._clock()
        self.worker = replace(self.worker, heartbeat_at=now, lease_until=now + self._lease)
        self._leases.register(self.worker)
        if self._check_index:  # again: two workers may have started at the same moment
            self._refuse_local_index_sharing(now)
        self._round()
        for thread in self._threads:
            thread.start()
        log.info("live.worker_started", worker=self.worker.id, cameras=sorted(self.held))

    def halt(self) -> None:
        """Stop claiming and renewing (the service is stopping); the leases stay held."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(self._interval + 1.0)

    def close(self) -> None:
        """Halt, then deregister: every lease released at once for the others to take."""
        self.halt()
        with self._lock:
            self._held.clear()
        try:
            released = self._leases.deregister(self.worker.id)
        except SQLAlchemyError as exc:
            log.warning(
                "live.deregister_failed",
                error=safe_error(exc).splitlines()[0],
                leases_expire_in_s=self._lease_s,
            )
            return
        log.info("live.worker_stopped", worker=self.worker.id, released=released)

    def _refuse_local_index_sharing(self, now: datetime) -> None:
        try:
            refuse_local_index_sharing(self._leases, me=self.worker, now=now)
        except ConfigError:
            self._leases.deregister(self.worker.id)
            raise

    # -- the rounds ------------------------------------------------------------------

    def _rounds(self) -> None:
        delay = self._interval
        while not self._stop.wait(delay):
            try:
                delay = self._round()
            except SQLAlchemyError as exc:
                delay = min(RETRY_SECONDS, self._interval)
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                    log.warning(
                        "live.leases_unreachable",
                        error=safe_error(exc).splitlines()[0],
                        held=sorted(self.held),
                        hint="reading goes on until the leases expire",
                    )
            except Exception as exc:  # a bug here must not end lease keeping silently
                delay = self._interval
                log.exception("live.lease_round_failed", error=safe_error(exc))

    def _round(self) -> float:
        """One round: heartbeat, renew, hand back, claim; returns seconds to the next."""
        began, now = time.monotonic(), self._clock()
        me = self.worker.id
        if not self._leases.heartbeat(me, now=now, lease=self._lease):
            self._leases.register(
                replace(self.worker, heartbeat_at=now, lease_until=now + self._lease)
            )
        held = self.held
        kept = self._leases.renew(me, held, now=now, lease=self._lease)
        with self._lock:
            for camera in kept & set(self._held):
                self._held[camera] = began + self._lease_s
        for camera in sorted(held - kept):
            self._lost(camera)
        if self._outage_since is not None:
            log.warning(
                "live.leases_back", outage_s=round(time.monotonic() - self._outage_since, 1)
            )
            self._outage_since = None
        return self._share(began, now)

    def _share(self, began: float, now: datetime) -> float:
        workers = self._leases.workers(now=now)
        leases = {lease.camera_id: lease for lease in self._leases.leases()}
        dead = {o for o in {lease.owner for lease in leases.values()} if dead_local_owner(o)}
        with self._lock:
            self._cooling = {c: t for c, t in self._cooling.items() if t > began}
            cooling = set(self._cooling)
        plan = plan_share(
            me=self.worker,
            cameras=self._cameras,
            workers=[w for w in workers if w.id not in dead],
            leases=leases,
            held=self.held,
            now=now,
            cooling=cooling,
            dead=dead,
        )
        for camera in plan.release:
            self._give_back(camera)
        for camera in plan.claim:
            owner = leases[camera].owner if camera in leases else None
            self._claim(camera, dead_owner=owner if owner in dead else None)
        return self._next_round(plan.share, leases, now, cooling)

    def _claim(self, camera: str, *, dead_owner: str | None) -> None:
        began, now = time.monotonic(), self._clock()
        won = self._leases.claim(
            camera, owner=self.worker.id, now=now, lease=self._lease, dead_owner=dead_owner
        )
        if not won:
            return
        with self._lock:
            self._held[camera] = began + self._lease_s
        log.info(
            "live.camera_claimed", camera_id=camera, worker=self.worker.id, took_over=dead_owner
        )
        self._control.start_camera(camera)

    def _give_back(self, camera: str) -> None:
        """Over the share: stop reading, commit what was read, then release the lease."""
        # No longer held from here on: should the release fail, the lease simply expires
        # (never renewed for a camera nobody here reads).
        with self._lock:
            self._held.pop(camera, None)
            self._cooling[camera] = time.monotonic() + self._lease_s
        self._control.hand_back(camera, timeout=self._interval)
        self._leases.release(self.worker.id, [camera])
        log.info("live.camera_handed_back", camera_id=camera, worker=self.worker.id)

    def _lost(self, camera: str) -> None:
        with self._lock:
            if self._held.pop(camera, None) is None:
                return
        log.warning(
            "live.lease_lost",
            camera_id=camera,
            worker=self.worker.id,
            why="another worker holds the camera now; its pending keyframes here are dropped",
        )
        self._control.stop_camera(camera, drop_pending=True)

    def _next_round(
        self,
        share: int,
        leases: Mapping[str, CameraLease],
        now: datetime,
        cooling: Collection[str],
    ) -> float:
        """Below the share, look again soon, and exactly when a wanted lease expires.

        So a stopped worker's cameras move within about a second, and a dead worker's
        within `lease_seconds` of its last renewal, not up to a round later.
        """
        held = self.held
        if len(held) >= share:
            return self._interval
        expiries = [
            (leases[c].lease_until - now).total_seconds()
            for c in self._cameras
            if c in leases and c not in held and c not in cooling and leases[c].lease_until > now
        ]
        hungry = min(self._interval, HUNGRY_SECONDS)
        return min([hungry, *(max(0.05, e + 0.05) for e in expiries)])

    # -- the watchdog ----------------------------------------------------------------

    def _watch(self) -> None:
        """Stop reading a camera whose lease runs out unrenewed (the catalog is away)."""
        while not self._stop.wait(WATCH_SECONDS):
            now = time.monotonic()
            with self._lock:
                # One look early: the next look may come only after the lease ran out.
                cutoff = now + self._margin + WATCH_SECONDS
                expired = [c for c, t in self._held.items() if t <= cutoff]
                for camera in expired:
                    del self._held[camera]
            for camera in expired:
                log.warning(
                    "live.lease_expired",
                    camera_id=camera,
                    worker=self.worker.id,
                    why="the catalog did not renew the lease in time; another worker may take it",
                )
                self._control.stop_camera(camera, drop_pending=False)
