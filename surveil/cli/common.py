"""Shared by every `surveil` subcommand: the Typer app, global options, error mapping.

Command output (tables, --json) goes to stdout; logs and progress go to stderr.
"""

from __future__ import annotations

import errno
import getpass
import json
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import click
import structlog
import typer
from sqlalchemy.exc import DBAPIError

from surveil.config import Settings, load_settings
from surveil.container import Services, build_services
from surveil.domain import ConfigError, InputError, NewAuditEntry, SurveilError
from surveil.logs import configure_logging

app = typer.Typer(
    name="surveil",
    help="Surveillance keyframe retrieval: ingest video, then search by example crop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Catalog database schema.", no_args_is_help=True)
index_app = typer.Typer(help="Vector index maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")

T = TypeVar("T")
_state: dict[str, Any] = {}
log = structlog.get_logger(__name__)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML settings file (default: $SURVEIL_CONFIG, else ./surveil.yaml if present).",
        dir_okay=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


@app.callback()
def _root(
    config: ConfigOpt = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR (overrides settings).")
    ] = None,
    log_json: Annotated[bool, typer.Option(help="Log JSON lines to stderr.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback behind an error (and log DEBUG).")
    ] = False,
) -> None:
    """Global options apply to every subcommand."""
    _state.update(config=config, log_level=log_level, log_json=log_json, debug=debug)
    if debug:
        _state["log_level"] = "DEBUG"


def _debugging() -> bool:
    """--debug or logging.level DEBUG: errors then show their traceback too."""
    return bool(_state.get("debug")) or _state.get("effective_level") == "DEBUG"


_HINT = "re-run with --debug for the traceback"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_error(exc: OSError) -> str:
    """Disk full, permission denied and friends: what, where, and what to do."""
    root = _state.get("storage_root")
    where = f" {exc.filename}" if exc.filename else (f" under {root}" if root else "")
    if exc.errno == errno.ENOSPC:
        return (
            f"no space left on the device writing{where}; free space there or point "
            "storage.root at a bigger disk, then re-run: committed work is kept"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"cannot write{where} ({exc.strerror}); make storage.root writable by this user "
            "or set SURVEIL_STORAGE__ROOT to a folder that is"
        )
    return f"{exc.strerror or _first_line(exc)}{where}; {_HINT}"


#: Our own errors, most specific first: their message is already the one line.
_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InputError, 2),
    (ConfigError, 3),
    (SurveilError, 1),
)


def error_exit(exc: BaseException) -> tuple[str, int]:
    """One line and an exit code for any error (2 input, 3 settings, 130 interrupt, 1 other)."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return str(exc), code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; committed work is kept and a re-run resumes", 130
    if isinstance(exc, DBAPIError):
        reason = _first_line(exc.orig) if exc.orig is not None else _first_line(exc)
        return (
            f"catalog database lost or unreachable ({reason}); committed work is kept: check "
            "database.url and that the server is up, then re-run (it resumes)",
            1,
        )
    if isinstance(exc, OSError):
        return _os_error(exc), 1
    return f"unexpected {type(exc).__name__}: {_first_line(exc)}; {_HINT}", 1


def fail(exc: BaseException) -> typer.Exit:
    """Print `error: ...` (after the traceback when debugging) and return the exit to raise."""
    if _debugging():
        traceback.print_exception(exc, file=sys.stderr)
    message, code = error_exit(exc)
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn any error into one stderr line and an exit code (2 input, 3 config, 1 other)."""
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise  # typer's own exits and usage errors already print what they must
    except (Exception, KeyboardInterrupt) as exc:
        raise fail(exc) from None


def cli_settings(overrides: dict[str, Any] | None = None) -> Settings:
    merged = dict(overrides or {})
    if _state.get("log_level"):
        merged["logging.level"] = str(_state["log_level"]).upper()
    if _state.get("log_json"):
        merged["logging.format"] = "json"
    settings = load_settings(_state.get("config"), overrides=merged)
    _state.update(effective_level=settings.logging.level, storage_root=settings.storage.root)
    configure_logging(settings.logging)
    return settings


def with_services(
    action: Callable[[Services], T], *, settings: Settings | None = None, reconcile: bool = True
) -> T:
    services = build_services(settings or cli_settings(), reconcile_index=reconcile)
    try:
        return action(services)
    finally:
        services.close()


def print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def cli_actor() -> str:
    """Who ran a CLI command, for the audit trail (the CLI has no API key)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def audit_cli(services: Services, action: str, detail: str) -> None:
    """Record an administrative CLI action in the audit trail, as the API does for its own."""
    services.access.record(
        NewAuditEntry(action=action, key_id=None, key_name=cli_actor(), role="cli", detail=detail)
    )


@contextmanager
def stop_signals(event: str) -> Iterator[threading.Event]:
    """SIGTERM and SIGINT set the yielded event (logged as `event`) instead of killing.

    Long-running commands (run, scheduler, serve) then drain, commit and save before they
    exit 0; the handlers that were installed before come back afterwards.
    """
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info(event, signal=signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def human_bytes(n: int) -> str:
    """1234567 -> '1.2 MB' (SI units, as disks are sold)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
