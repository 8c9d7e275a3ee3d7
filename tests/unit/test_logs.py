"""Logging follows `sys.stderr` as it is now, so a closed earlier stream never breaks a caller."""

from __future__ import annotations

import io
import logging
import sys

import pytest
import structlog

from surveil.config import LoggingSettings
from surveil.logs import configure_logging


def test_logs_go_to_the_current_stderr_after_the_configured_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging(LoggingSettings(format="json"))
    first.close()  # what a test runner does to a captured stream it handed out
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)

    structlog.get_logger("t").warning("still.logged", n=1)
    logging.getLogger("t.stdlib").warning("stdlib line")

    out = second.getvalue()
    assert '"event": "still.logged"' in out and '"n": 1' in out
    assert "stdlib line" in out


def test_a_log_line_with_nowhere_to_go_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = io.StringIO()
    monkeypatch.setattr(sys, "stderr", dead)
    configure_logging(LoggingSettings())
    dead.close()
    structlog.get_logger("t").error("lost.but.harmless")
