"""`surveil run` (always-on live ingest) and `surveil cameras status` (its health)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Annotated

import structlog
import typer

from surveil.cli.common import (
    JsonOpt,
    _state,
    app,
    handle_errors,
    print_json,
    stop_signals,
    with_services,
)
from surveil.container import Services
from surveil.domain import ConfigError

log = structlog.get_logger(__name__)

cameras_app = typer.Typer(help="Live cameras and their health.", no_args_is_help=True)
app.add_typer(cameras_app, name="cameras")


@app.command(
    epilog="Examples:  surveil run --config site.yaml   |   surveil --config site.yaml run   "
    "(stop with Ctrl-C or SIGTERM: pending keyframes are committed and the index saved)"
)
def run(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML settings with a `cameras:` list (same as the global --config).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Ingest every configured live camera until stopped (Ctrl-C or SIGTERM).

    One reader per camera, one batched model path for all cameras, failed cameras
    reconnected with backoff, health written to the catalog (`surveil cameras status`).
    """
    if config is not None:
        _state["config"] = config
    with stop_signals("live.signal") as stop, handle_errors():
        report = with_services(lambda services: _run(services, stop))
    if not report:
        # A model call or a blocking read still runs in a daemon thread; letting the
        # interpreter tear down around native code can abort, so leave at once (exit 0:
        # everything committed is in the catalog, and the next start reconciles the index).
        log.warning("live.unclean_stop", hint="raise live.shutdown_seconds; a restart reconciles")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _run(services: Services, stop: threading.Event) -> bool:
    from surveil.ingest.live.service import LiveService

    service = LiveService(services)
    if not service.cameras:
        raise ConfigError(
            "no enabled cameras to read: add a `cameras:` list (each with id and url) to the "
            "config file, or give cameras a URL through the API (PATCH /api/v1/cameras/ID)"
        )
    return service.run_until(stop).clean


@cameras_app.command("status")
def cameras_status(as_json: JsonOpt = False) -> None:
    """Each live camera's health as `surveil run` last wrote it to the catalog."""
    with handle_errors():
        rows = with_services(lambda s: s.health.read(), reconcile=False)
    from surveil.api.views import health_view

    views = [health_view(h) for h in rows]
    if as_json:
        print_json({"cameras": views})
        return
    if not views:
        typer.echo("no camera health recorded yet; is `surveil run` running?")
        return
    typer.echo(
        f"{'camera':<16} {'state':<10} {'fps':>6} {'kf/s':>6} {'keyframes':>10} "
        f"{'drops':>7} {'reconn':>6}  last frame / last error"
    )
    for v in views:
        typer.echo(
            f"{v['id']:<16} {v['state']:<10} {v['fps']:>6.1f} {v['keyframes_per_s']:>6.2f} "
            f"{v['keyframes']:>10} {v['drops']:>7} {v['reconnects']:>6}  "
            f"{v['last_frame_at'] or '-'}  {v['last_error'] or ''}"
        )
