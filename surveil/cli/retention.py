"""Retention commands: `surveil retention run` and legal holds (`surveil hold set|clear`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from surveil.cli.common import (
    JsonOpt,
    app,
    cli_actor,
    handle_errors,
    human_bytes,
    print_json,
    with_services,
)
from surveil.container import Services
from surveil.domain import InputError, NewAuditEntry, parse_time
from surveil.jobs.retention import retention_parts, run_retention
from surveil.jobs.runner import utc_now

retention_app = typer.Typer(
    help="Forget expired footage: rows, vectors and files together.", no_args_is_help=True
)
hold_app = typer.Typer(
    help="Legal holds: keep a camera's or an appearance's data whatever retention says.",
    no_args_is_help=True,
)
app.add_typer(retention_app, name="retention")
app.add_typer(hold_app, name="hold")

CameraOpt = Annotated[
    list[str] | None, typer.Option("--camera", help="A camera id (repeatable).", show_default=False)
]
AppearanceOpt = Annotated[
    list[int] | None,
    typer.Option("--appearance", help="An appearance id (repeatable).", show_default=False),
]


@retention_app.command(
    "run",
    epilog="Example:  surveil retention run --dry-run --now 2026-12-01T00:00:00Z --json",
)
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would go; change nothing.")
    ] = False,
    now: Annotated[
        str | None, typer.Option(help="Judge ages as if it were this time (ISO 8601).")
    ] = None,
    sweep: Annotated[
        bool | None,
        typer.Option("--sweep/--no-sweep", help="Orphan sweep (default: retention.sweep)."),
    ] = None,
    full_sweep: Annotated[
        bool,
        typer.Option(
            "--full-sweep",
            help="Sweep the whole store, not this run's slice (retention.sweep_slices).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove expired appearances and keyframes with their vectors and files, then sweep."""

    def act(s: Services) -> dict[str, Any]:
        report = run_retention(
            retention_parts(s),
            s.settings.retention,
            now=at or utc_now(),
            dry_run=dry_run,
            sweep_orphans=sweep,
            full_sweep=full_sweep,
        )
        return report.to_dict()

    with handle_errors():
        at = parse_time(now, "--now")
        # No start-up reconcile: an interrupted run's journal is finished first, dropping
        # whole shards that reconcile would otherwise load and edit; the sweep reconciles.
        done = with_services(act, reconcile=False)
    if as_json:
        print_json(done)
    else:
        _print_summary(done)


def _print_summary(done: dict[str, Any]) -> None:
    verb = "would remove" if done["dry_run"] else "removed"
    typer.echo(
        f"{verb} {done['appearances']} appearances, {done['keyframes']} keyframes, "
        f"{done['vectors']} vectors, {done['files']} files ({human_bytes(done['bytes'])}) "
        f"as of {done['now']} in {done['seconds']} s"
    )
    for cam, t in done["per_camera"].items():
        typer.echo(
            f"  {cam}: {t['appearances']} appearances, {t['keyframes']} keyframes, "
            f"{t['files']} files ({human_bytes(t['bytes'])})"
        )
    idx = done["index"]
    typer.echo(f"index: {idx['shards_dropped']} day shards dropped, {idx['shards_edited']} edited")
    if done["resumed"]:
        typer.echo(f"finished {done['resumed']} journal entries of an interrupted run")
    _print_reasons(done)
    orphans = done["orphans"]
    if orphans is not None:
        missing = orphans["rows_missing_files"]
        typer.echo(
            f"orphans: {orphans['files']} files ({human_bytes(orphans['bytes'])}), "
            f"{orphans['vectors']} vectors; rows whose file is missing: "
            f"{missing['appearances']} appearances, {missing['keyframes']} keyframes"
        )


def _print_reasons(done: dict[str, Any]) -> None:
    """By rule (age, size budget), and a budget that only holds and evidence keep up."""
    budget = done.get("budget")
    if budget is None:
        return
    for why, t in done["reason"].items():
        typer.echo(
            f"  by {why}: {t['appearances']} appearances, {t['keyframes']} keyframes "
            f"({human_bytes(t['bytes'])} of files)"
        )
    limit = budget["budget_bytes"]
    typer.echo(
        f"budget: {human_bytes(limit) if limit else 'none'} global, stored "
        f"{human_bytes(budget['stored_bytes'])}, over by {human_bytes(budget['excess_bytes'])},"
        f" freed {human_bytes(budget['freed_bytes'])}"
    )
    if budget["unmet_bytes"]:
        typer.echo(
            f"budget NOT met by {human_bytes(budget['unmet_bytes'])}: only legal holds and "
            f"alert evidence ({human_bytes(budget['held_or_evidence_bytes'])}) are left; "
            "release holds, raise retention.max_bytes or shorten retention.evidence_days"
        )


def _set_holds(
    held: bool, cameras: list[str] | None, appearances: list[int] | None, as_json: bool
) -> None:
    cams, apps = sorted(set(cameras or [])), sorted(set(appearances or []))
    if not cams and not apps:
        raise InputError("name at least one --camera or --appearance")
    action = "hold.set" if held else "hold.clear"

    def act(s: Services) -> None:
        for cam in cams:
            s.retention.camera_hold(cam)  # every name checked before anything changes
        if apps:
            s.retention.set_appearance_holds(apps, held)
        for cam in cams:
            s.retention.set_camera_hold(cam, held)
        who = cli_actor()
        for cam in cams:
            _audit(s, action, who, detail=f"camera {cam}")
        for app_id in apps:
            _audit(s, action, who, detail=f"appearance {app_id}", appearance_id=app_id)

    with_services(act, reconcile=False)
    if as_json:
        print_json({"legal_hold": held, "cameras": cams, "appearances": apps})
        return
    what = ", ".join([f"camera {c}" for c in cams] + [f"appearance {a}" for a in apps])
    typer.echo(f"legal hold {'set on' if held else 'cleared from'} {what}")


def _audit(
    s: Services, action: str, who: str, *, detail: str, appearance_id: int | None = None
) -> None:
    s.access.record(
        NewAuditEntry(
            action=action,
            key_id=None,
            key_name=who,
            role="cli",
            appearance_id=appearance_id,
            detail=detail,
        )
    )


@hold_app.command("set", epilog="Example:  surveil hold set --camera lobby --appearance 42 --json")
def hold_set(
    camera: CameraOpt = None, appearance: AppearanceOpt = None, as_json: JsonOpt = False
) -> None:
    """Put cameras or appearances under legal hold: retention keeps them (and keyframes)."""
    with handle_errors():
        _set_holds(True, camera, appearance, as_json)


@hold_app.command("clear", epilog="Example:  surveil hold clear --appearance 42 --json")
def hold_clear(
    camera: CameraOpt = None, appearance: AppearanceOpt = None, as_json: JsonOpt = False
) -> None:
    """Lift legal holds; the next retention run treats the data by policy again."""
    with handle_errors():
        _set_holds(False, camera, appearance, as_json)
