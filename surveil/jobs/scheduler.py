"""APScheduler wiring: one interval job per registry entry, resynced as rules change.

APScheduler fires the timers; whether a job really runs is decided by `JobRunner`
against the database (due time and lease), so schedules survive restarts and two
scheduler processes never run one job at the same time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from surveil.alerts.notify import WebhookSender
from surveil.alerts.targets import WebhookPolicy
from surveil.container import Services
from surveil.jobs.registry import RULE_PREFIX, build_jobs
from surveil.jobs.runner import Job, JobOutcome, JobRunner

log = structlog.get_logger(__name__)

_SYNC = "scheduler.sync"


class Scheduler:
    """Runs the registry's jobs in the background (serve) or in the foreground (scheduler)."""

    def __init__(self, services: Services, *, workers: int = 4) -> None:
        self._services = services
        settings = services.settings
        self._sender = WebhookSender(
            timeout=settings.alerts.webhook_timeout_seconds,
            policy=WebhookPolicy(settings.alerts.webhook_hosts),
        )
        self._runner = JobRunner(
            services.jobs, lease=timedelta(seconds=settings.scheduler.lease_seconds)
        )
        self._aps = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    @property
    def owner(self) -> str:
        """The lease owner id this scheduler runs jobs under."""
        return self._runner.owner

    def run_once(self) -> list[JobOutcome]:
        """Run every job that is due now, once, in registry order (`scheduler --once`)."""
        done = []
        for job in build_jobs(self._services, self._sender):
            outcome = self._runner.run_if_due(job)
            if outcome is not None:
                done.append(outcome)
        return done

    def start(self) -> None:
        """Schedule every job and keep the rule jobs in step with the rules table."""
        self.sync()
        self._aps.add_job(
            self.sync,
            IntervalTrigger(seconds=self._services.settings.scheduler.sync_seconds),
            id=_SYNC,
        )
        self._aps.start()
        log.info("scheduler.started", owner=self.owner, jobs=sorted(self._jobs))

    def sync(self) -> None:
        """Add jobs for new rules, drop deleted or disabled ones, follow interval changes."""
        try:
            wanted = {job.name: job for job in build_jobs(self._services, self._sender)}
        except Exception as exc:  # the database may be restarting; try again next sync
            log.warning("scheduler.sync_failed", error=f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            gone = sorted(set(self._jobs) - set(wanted))
            for name in gone:
                self._aps.remove_job(name)
                del self._jobs[name]
            self._services.jobs.forget([n for n in gone if n.startswith(RULE_PREFIX)])
            for name, job in wanted.items():
                known = self._jobs.get(name)
                if known is not None and known.interval == job.interval:
                    self._jobs[name] = job
                    continue
                if known is not None:
                    self._aps.remove_job(name)
                self._jobs[name] = job
                self._aps.add_job(
                    self._fire,
                    IntervalTrigger(seconds=job.interval.total_seconds()),
                    args=[name],
                    id=name,
                    next_run_time=self._first_run(job),
                )

    def _first_run(self, job: Job) -> datetime:
        # The persisted schedule wins: a restart does not re-run a daily job early.
        return max(datetime.now(UTC), self._runner.next_run_at(job))

    def _fire(self, name: str) -> None:
        with self._lock:
            job = self._jobs.get(name)
        if job is not None:
            self._runner.run_if_due(job)

    def stop(self, *, wait: bool = True) -> None:
        """Stop the timers; with `wait`, let running jobs finish first."""
        if self._aps.running:
            self._aps.shutdown(wait=wait)
        self._sender.close()
        log.info("scheduler.stopped", owner=self.owner)
