"""Job logs an operator can read: a run that did nothing is debug, work and failures show."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import services_for

from surveil.alerts.notify import WebhookSender
from surveil.config import LoggingSettings, Settings
from surveil.container import Services
from surveil.jobs.registry import delivery_job
from surveil.jobs.runner import Job, JobRunner
from surveil.logs import configure_logging


@pytest.fixture
def services(make_settings: Any, database_url: str) -> Iterator[Services]:
    settings: Settings = make_settings(**{"database.url": database_url})
    with services_for(settings) as built:
        yield built


@pytest.fixture
def job_lines(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """The `job.*` lines the real logging wrote to stderr since the last read."""
    capsys.readouterr()

    def read() -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
        return [x for x in lines if str(x["event"]).startswith("job.")]

    return read


def test_idle_webhook_delivery_is_quiet_at_info_and_seen_at_debug(
    services: Services, job_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    sender = WebhookSender(timeout=1.0)
    job = delivery_job(services, sender)
    configure_logging(LoggingSettings(level="INFO", format="json"))
    JobRunner(services.jobs, owner="a").run_if_due(job)
    assert job_lines() == []  # nothing was due: no `job.done` every 2 s

    configure_logging(LoggingSettings(level="DEBUG", format="json"))
    JobRunner(services.jobs, owner="b", clock=_later).run_if_due(job)
    lines = job_lines()
    assert [(x["event"], x["level"], x["delivered"]) for x in lines] == [("job.done", "debug", 0)]


def test_a_run_that_did_work_or_failed_is_logged_at_info(
    services: Services, job_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    configure_logging(LoggingSettings(level="INFO", format="json"))
    busy = Job("test.busy", timedelta(seconds=1), lambda: {"sent": 3}, work_keys=("sent",))
    JobRunner(services.jobs, owner="a").run_if_due(busy)

    def broken() -> dict[str, int]:
        raise RuntimeError("disk on fire")

    JobRunner(services.jobs, owner="a").run_if_due(Job("test.broken", timedelta(seconds=1), broken))
    lines = job_lines()
    assert [(x["event"], x["level"], x["job"]) for x in lines] == [
        ("job.done", "info", "test.busy"),
        ("job.failed", "error", "test.broken"),
    ]
    assert lines[0]["sent"] == 3 and "disk on fire" in lines[1]["error"]


def _later() -> datetime:
    """A clock past the first run's interval, so the job is due again."""
    return datetime.now(UTC) + timedelta(minutes=5)
