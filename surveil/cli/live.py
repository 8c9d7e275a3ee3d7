"""`surveil run` (always-on live ingest), `surveil cameras status` and `cameras workers`."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

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
    from surveil.ingest.live.leases import refuse_local_index_sharing, this_worker
    from surveil.ingest.live.service import LiveService

    # Before the models load: a second worker on a local index is refused in a second.
    me = this_worker(services.settings)
    refuse_local_index_sharing(services.leases, me=me, now=me.started_at)
    service = LiveService(services)
    port = services.settings.live.metrics_port
    if port is not None:
        from surveil.telemetry import serve_process_metrics

        serve_process_metrics(port, engine=services.engine, root=services.settings.storage.root)
    if not service.cameras:
        live = services.settings.live
        pins = (
            " matching live.cameras / live.camera_tags" if live.cameras or live.camera_tags else ""
        )
        raise ConfigError(
            f"no enabled cameras{pins} to read: add a `cameras:` list (each with id and url) "
            "to the config file, or give cameras a URL through the API (PATCH /api/v1/cameras/ID)"
        )
    return service.run_until(stop).clean


def _board(services: Services) -> dict[str, Any]:
    """Health, leases and live workers as the catalog holds them (any worker, any host)."""
    from surveil.api.views import health_view, lease_views, worker_views

    now = datetime.now(UTC)
    leases = services.leases.leases()
    workers = services.leases.workers(now=now)
    held = lease_views(leases, workers, now)
    cameras = [{**health_view(h), "lease": held.get(h.camera_id)} for h in services.health.read()]
    return {"cameras": cameras, "workers": worker_views(workers, leases, now)}


@cameras_app.command("status")
def cameras_status(as_json: JsonOpt = False) -> None:
    """Each live camera's health and the worker reading it, as the catalog has them."""
    with handle_errors():
        board = with_services(_board, reconcile=False)
    if as_json:
        print_json(board)
        return
    views = board["cameras"]
    if not views:
        typer.echo("no camera health recorded yet; is `surveil run` running?")
        return
    typer.echo(
        f"{'camera':<16} {'state':<10} {'fps':>6} {'kf/s':>6} {'keyframes':>10} "
        f"{'drops':>7} {'reconn':>6}  {'worker (lease age)':<34} last frame / last error"
    )
    for v in views:
        typer.echo(
            f"{v['id']:<16} {v['state']:<10} {v['fps']:>6.1f} {v['keyframes_per_s']:>6.2f} "
            f"{v['keyframes']:>10} {v['drops']:>7} {v['reconnects']:>6}  {_holder(v):<34} "
            f"{v['last_frame_at'] or '-'}  {v['last_error'] or ''}"
        )
    _echo_workers(board["workers"])


@cameras_app.command("workers")
def cameras_workers(as_json: JsonOpt = False) -> None:
    """Live ingest workers (`surveil run` on any host) and the cameras each one reads."""
    with handle_errors():
        board = with_services(_board, reconcile=False)
    if as_json:
        print_json({"workers": board["workers"]})
        return
    if not board["workers"]:
        typer.echo("no live workers; start one with `surveil run`")
        return
    _echo_workers(board["workers"])


def _holder(view: dict[str, Any]) -> str:
    lease = view.get("lease")
    if not lease:
        return "-"
    stale = "" if lease["live"] else ", expired"
    return f"{lease['worker']} ({lease['age_seconds']:.0f}s{stale})"


def _echo_workers(workers: list[dict[str, Any]]) -> None:
    typer.echo(f"\nlive workers: {len(workers)}")
    for w in workers:
        pins = ",".join(w["pinned_cameras"] + [f"tag:{t}" for t in w["pinned_tags"]]) or "any"
        typer.echo(
            f"  {w['id']:<34} host={w['host']} pid={w['pid']} index={w['index_backend']} "
            f"pins={pins} cameras={','.join(w['cameras']) or '-'}"
        )
