"""`surveil ...`: each subcommand loads settings, builds services, acts, prints.

Commands live in modules by subject; importing them registers them on `app`.
"""

from __future__ import annotations

from surveil.cli import (  # noqa: F401  (registers)
    access,
    alerts,
    catalog,
    live,
    retention,
    serve,
    settings,
)
from surveil.cli.common import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
