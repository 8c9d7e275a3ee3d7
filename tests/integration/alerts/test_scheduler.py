"""The scheduler for real: APScheduler timers, database leases, schedules across restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from synthetic import TARGET, make_rule, store_persons

from surveil.config import Settings
from surveil.container import Services, build_services
from surveil.jobs.runner import Job, JobRunner, dead_local_owner, pid_namespace, runner_id
from surveil.jobs.scheduler import Scheduler
from surveil.storage.migrate import upgrade


@pytest.fixture
def settings(make_settings: Any, database_url: str) -> Settings:
    upgrade(database_url)
    built: Settings = make_settings(
        **{
            "database.url": database_url,
            "scheduler.sync_seconds": 0.2,
            "alerts.delivery_poll_seconds": 0.2,
        }
    )
    return built


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    s = build_services(settings)
    try:
        yield s
    finally:
        s.close()


def test_two_runners_never_run_one_job_at_once(services: Services) -> None:
    running, overlaps, runs = [0], [0], [0]
    lock = threading.Lock()

    def work() -> dict[str, int]:
        with lock:
            running[0] += 1
            overlaps[0] += running[0] > 1
            runs[0] += 1
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return {}

    job = Job("test.exclusive", timedelta(milliseconds=1), work)
    runners = [JobRunner(services.jobs, owner=f"r{i}") for i in range(4)]
    stop = time.monotonic() + 1.5

    def loop(runner: JobRunner) -> None:
        while time.monotonic() < stop:
            runner.run_if_due(job)

    threads = [threading.Thread(target=loop, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs[0] >= 5 and overlaps[0] == 0
    assert services.jobs.get("test.exclusive").runs == runs[0]


def test_a_crashed_runners_lease_expires_and_the_schedule_persists(services: Services) -> None:
    now = datetime.now(UTC)
    job = Job("test.daily", timedelta(days=1), lambda: {"ok": 1})
    # A runner that died holding the lease: nobody may run until it expires.
    services.jobs.ensure(job.name, first_run_at=now)
    lease = timedelta(seconds=0.5)
    slack = timedelta(0)
    assert services.jobs.claim(job.name, owner="dead", now=now, lease=lease, slack=slack)
    runner = JobRunner(services.jobs, owner="alive")
    assert runner.run_if_due(job) is None
    time.sleep(0.6)
    outcome = runner.run_if_due(job)
    assert outcome is not None and outcome.status == "ok"
    # A restarted process (a new runner) finds it not due for a day.
    state = services.jobs.get(job.name)
    assert state.next_run_at > datetime.now(UTC) + timedelta(hours=23)
    assert JobRunner(services.jobs, owner="restarted").run_if_due(job) is None


def test_a_failing_job_is_recorded_and_does_not_stop_the_runner(services: Services) -> None:
    def boom() -> dict[str, int]:
        raise RuntimeError("disk full")

    runner = JobRunner(services.jobs)
    outcome = runner.run_if_due(Job("test.boom", timedelta(seconds=1), boom))
    assert outcome is not None and outcome.status == "error"
    state = services.jobs.get("test.boom")
    assert state.last_status == "error" and "disk full" in (state.last_error or "")
    assert state.lease_owner is None  # released: the next run may go ahead


def test_background_scheduler_runs_rule_jobs_and_follows_new_rules(services: Services) -> None:
    scheduler = Scheduler(services)
    scheduler.start()
    try:
        rule_id = make_rule(services, interval_s=1)
        store_persons(services, "lobby", [(0, TARGET)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not services.alerts.list_alerts():
            time.sleep(0.2)
    finally:
        scheduler.stop()
    [alert] = services.alerts.list_alerts()
    assert alert.rule_id == rule_id
    assert services.jobs.get(f"rule:{rule_id}").runs >= 1


def test_a_lease_held_by_a_dead_process_on_this_host_is_taken_over(services: Services) -> None:
    import socket
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{gone.stdout.strip()}:tag.{pid_namespace()}"
    now = datetime.now(UTC)
    job = Job("test.crashed", timedelta(minutes=5), lambda: {"ran": 1})
    services.jobs.ensure(job.name, first_run_at=now)
    assert services.jobs.claim(
        job.name, owner=dead, now=now, lease=timedelta(hours=1), slack=timedelta(0)
    )
    outcome = JobRunner(services.jobs, owner="successor").run_if_due(job)
    assert outcome is not None and outcome.summary == {"ran": 1}
    # A live holder (this very process) is never robbed.
    services.jobs.claim(
        job.name,
        owner=f"{socket.gethostname()}:1:x",
        now=now + timedelta(minutes=6),
        lease=timedelta(hours=1),
        slack=timedelta(0),
    )
    later = JobRunner(services.jobs, owner="other", clock=lambda: now + timedelta(minutes=7))
    assert later.run_if_due(job) is None
    assert services.jobs.get(job.name).lease_owner == f"{socket.gethostname()}:1:x"


def test_only_a_dead_owner_of_this_host_and_pid_namespace_counts_as_dead() -> None:
    """Containers sharing a hostname have their own PIDs: their owners are left alone."""
    import socket
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    host = socket.gethostname()
    here = f"{host}:{gone}:abc.{pid_namespace()}"
    assert dead_local_owner(here) == here
    assert dead_local_owner(f"{host}:{gone}:abc.ffffffff0") is None  # another container
    assert dead_local_owner(f"{host}:{gone}:abc") is None  # namespace unknown
    assert dead_local_owner(f"elsewhere-{host}:{gone}:abc.{pid_namespace()}") is None
    assert dead_local_owner(runner_id()) is None  # this very process
    assert runner_id().endswith(f".{pid_namespace()}")


def test_a_job_running_longer_than_its_lease_is_not_started_twice(services: Services) -> None:
    """The lease is renewed while the job runs: another replica waits for the real end."""
    running, overlaps, runs = [0], [0], [0]
    lock = threading.Lock()

    def slow() -> dict[str, int]:
        with lock:
            running[0] += 1
            overlaps[0] += running[0] > 1
            runs[0] += 1
        time.sleep(1.5)  # five leases long
        with lock:
            running[0] -= 1
        return {}

    job = Job("test.slow", timedelta(milliseconds=1), slow)
    lease = timedelta(seconds=0.3)
    first = JobRunner(services.jobs, owner="replica-1", lease=lease)
    second = JobRunner(services.jobs, owner="replica-2", lease=lease)
    worker = threading.Thread(target=first.run_if_due, args=(job,))
    worker.start()
    time.sleep(0.2)
    tries = 0
    while worker.is_alive():
        assert second.run_if_due(job) is None or not worker.is_alive()
        tries += 1
        time.sleep(0.05)
    worker.join()
    assert tries >= 10 and overlaps[0] == 0
    assert services.jobs.get(job.name).lease_owner is None
