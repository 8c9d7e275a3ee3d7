"""Structured logging set-up: console lines for people, JSON lines for machines."""

from __future__ import annotations

import logging
import sys

import structlog

from surveil.config import LoggingSettings


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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, force=True)
    # Ultralytics and onnxruntime are chatty at INFO; their warnings still come through.
    for noisy in ("ultralytics", "onnxruntime", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
