"""One job run: win the lease, time it, log it, record the outcome, never raise.

Every scheduled job goes through `JobRunner.run_if_due`, whether APScheduler fired it
inside `surveil serve`, inside `surveil scheduler`, or `surveil scheduler --once` did.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from surveil import telemetry
from surveil.storage.jobs import SqlJobs

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    """Wall-clock UTC: job schedules are shared between processes through the database."""
    return datetime.now(UTC)


def pid_namespace() -> str:
    """This process's PID namespace (hex inode; "0" where /proc has none).

    Two containers on one host may share a hostname (host networking) while each has
    its own PIDs: a PID seen "dead" from here says nothing about a process over there.
    """
    try:
        return format(Path("/proc/self/ns/pid").stat().st_ino, "x")
    except OSError:
        return "0"


def runner_id() -> str:
    """Who holds a lease: host, pid, a random tag (pids repeat) and the PID namespace."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}.{pid_namespace()}"


def dead_local_owner(owner: str | None) -> str | None:
    """`owner` if it names a process of this host and PID namespace that is gone, else None.

    A crashed scheduler's (or worker's) lease would block its work until it expires; when
    we can see the process is gone we take over at once. An owner from another host, or
    from another PID namespace on this host (another container), is never judged here.
    """
    if not owner:
        return None
    host, _, rest = owner.partition(":")
    pid_text, _, tag = rest.partition(":")
    namespace = tag.rpartition(".")[2] if "." in tag else None
    if host != socket.gethostname() or namespace != pid_namespace() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return owner
    except PermissionError:
        return None  # alive, owned by another user
    return None


@dataclass(frozen=True)
class Job:
    """A named unit of scheduled work; `run` returns a summary that is logged with the run."""

    name: str
    interval: timedelta
    run: Callable[[], Mapping[str, Any]]
    # How long after the scheduler first meets the job its first run is due (retention
    # waits a day, so a fresh install does not purge imported footage at first start).
    first_delay: timedelta = timedelta(0)
    # Summary counts that say the run did something; when all are 0 the run logs at debug,
    # so jobs that poll every few seconds stay quiet at info. Empty: always info.
    work_keys: tuple[str, ...] = ()

    def idle(self, summary: Mapping[str, Any]) -> bool:
        """True when a run found nothing to do (every work count is 0)."""
        return bool(self.work_keys) and not any(summary.get(k) for k in self.work_keys)


@dataclass(frozen=True)
class JobOutcome:
    """What one run did."""

    name: str
    status: str  # "ok" or "error"
    seconds: float
    summary: Mapping[str, Any]
    error: str | None = None


class JobRunner:
    """Runs jobs under a database lease so that one process at a time runs each job."""

    def __init__(
        self,
        jobs: SqlJobs,
        *,
        owner: str | None = None,
        lease: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._jobs = jobs
        self.owner = owner or runner_id()
        self._lease = lease
        self._clock = clock

    def next_run_at(self, job: Job) -> datetime:
        """When the job is due (now for a job never run before)."""
        return self._jobs.ensure(job.name, first_run_at=self._clock() + job.first_delay).next_run_at

    def _claim(self, job: Job, now: datetime, slack: timedelta) -> bool:
        def claim(dead: str | None = None) -> bool:
            return self._jobs.claim(
                job.name, owner=self.owner, now=now, lease=self._lease, slack=slack, dead_owner=dead
            )

        if claim():
            return True
        dead = dead_local_owner(self._jobs.get(job.name).lease_owner)
        if dead is None or not claim(dead):
            return False
        log.warning("job.lease_taken_over", job=job.name, dead_owner=dead)
        return True

    def _keep_lease(self, job: Job) -> threading.Event:
        """Renew the job's lease every third of it while it runs; set the event to stop.

        Without this a run longer than the lease (a big retention sweep) would look
        crashed, and another replica's scheduler would start the same job beside it.
        """
        done = threading.Event()
        every = self._lease.total_seconds() / 3

        def renew() -> None:
            while not done.wait(every):
                try:
                    kept = self._jobs.renew(
                        job.name, owner=self.owner, now=self._clock(), lease=self._lease
                    )
                except Exception as exc:  # the database may be restarting: next time
                    log.warning("job.lease_renew_failed", job=job.name, error=str(exc)[:200])
                    continue
                if not kept:
                    log.warning("job.lease_lost", job=job.name, while_running=True)
                    return

        threading.Thread(target=renew, name=f"lease-{job.name}", daemon=True).start()
        return done

    def run_if_due(self, job: Job) -> JobOutcome | None:
        """Run the job if it is due and no other runner holds it; None when skipped."""
        now = self._clock()
        self._jobs.ensure(job.name, first_run_at=now + job.first_delay)
        # A timer firing a hair early must not push the run a whole interval back.
        slack = min(timedelta(seconds=1), job.interval / 10)
        if not self._claim(job, now, slack):
            return None
        started = time.perf_counter()
        summary: Mapping[str, Any] = {}
        error: str | None = None
        renewing = self._keep_lease(job)
        try:
            summary = job.run()
        except Exception as exc:  # a failing job must not stop the scheduler
            error = f"{type(exc).__name__}: {exc}"
            log.exception("job.failed", job=job.name, error=error)
        finally:
            renewing.set()
        seconds = time.perf_counter() - started
        status = "ok" if error is None else "error"
        telemetry.JOB_RUNS.labels(job.name, status).inc()
        telemetry.JOB_SECONDS.labels(job.name).observe(seconds)
        kept = self._jobs.finish(
            job.name,
            owner=self.owner,
            now=self._clock(),
            next_run_at=now + job.interval,
            status=status,
            error=error,
            seconds=seconds,
        )
        if not kept:
            log.warning("job.lease_lost", job=job.name, seconds=round(seconds, 3))
        if error is None:
            emit = log.debug if job.idle(summary) else log.info
            emit("job.done", job=job.name, seconds=round(seconds, 3), **dict(summary))
        return JobOutcome(job.name, status, seconds, summary, error)
