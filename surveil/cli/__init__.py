"""`surveil ...`: each subcommand loads settings, builds services, acts, prints.

Commands live in modules by subject; importing them registers them on `app`.
"""

from __future__ import annotations

from surveil.cli import (  # noqa: F401  (registers)
    access,
    alerts,
    backup,
    catalog,
    compare,
    embedder,
    export,
    feedback,
    live,
    reembed,
    retention,
    serve,
    settings,
    storage,
    tracks,
)
from surveil.cli.common import app, fail


def main() -> None:
    """Console-script entry point; whatever escapes a command still ends in one `error:` line."""
    try:
        app()  # click itself handles usage errors, --help and exits
    except Exception as exc:
        raise SystemExit(fail(exc).exit_code) from None


__all__ = ["app", "main"]
