"""Structured logging set-up: console lines for people, JSON lines for machines."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from surveil.config import LoggingSettings


class _StderrLogger:
    """Writes each line to whatever `sys.stderr` is at that moment.

    A stream bound at configure time can be closed later (a test runner or an embedding
    program swaps and closes stderr); logging must then go to the new stream, and a log
    line must never raise into the code that logged it (an API request, an ingest).
    """

    def msg(self, message: str) -> None:
        try:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
        except (ValueError, OSError):
            pass  # nowhere left to write; losing a log line beats failing the caller

    log = debug = info = warn = warning = msg
    err = error = critical = exception = fatal = failure = msg


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stdlib side of the same rule: always the current `sys.stderr`."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(settings: LoggingSettings) -> None:
    """Route structlog and stdlib logging to stderr at the configured level and format.

    stdout is kept for command output (tables, --json), so logs never corrupt it.
    """
    level = getattr(logging, settings.level)
    renderer: structlog.types.Processor
    if settings.format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=max(level, logging.WARNING), handlers=[_CurrentStderrHandler()], force=True
    )
    # Ultralytics and onnxruntime are chatty at INFO; their warnings still come through.
    for noisy in ("ultralytics", "onnxruntime", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
