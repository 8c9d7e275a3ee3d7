"""`surveil storage estimate`: what footage takes per camera and how many days fit."""

from __future__ import annotations

from typing import Any

import typer

from surveil.cli.common import JsonOpt, app, handle_errors, human_bytes, print_json, with_services
from surveil.jobs.storage import storage_estimate

storage_app = typer.Typer(
    help="Storage: bytes stored per camera, days that fit in the budget.", no_args_is_help=True
)
app.add_typer(storage_app, name="storage")


@storage_app.command(
    "estimate",
    epilog="Example:  SURVEIL_RETENTION__MAX_BYTES='2 TB' surveil storage estimate --json",
)
def estimate_cmd(as_json: JsonOpt = False) -> None:
    """Bytes stored per camera and how many days of footage fit in the budget.

    Files, catalog rows and vectors per camera; bytes per day with footage so far; days
    that fit in retention.max_bytes / camera_max_bytes; when the budget and the disk
    fill at this rate. Rows stored before sizes were recorded are sized first (once).
    """
    with handle_errors():
        done = with_services(lambda s: storage_estimate(s).to_dict(), reconcile=False)
    if as_json:
        print_json(done)
    else:
        _print(done)


def _print(done: dict[str, Any]) -> None:
    budget = done["budget_bytes"]
    typer.echo(
        f"stored {human_bytes(done['bytes_stored'])} "
        f"(catalog rows {human_bytes(done['catalog_bytes'])}, "
        f"vectors {human_bytes(done['index_bytes'])}); "
        f"{human_bytes(done['bytes_per_day'])}/day; budget "
        + (human_bytes(budget) if budget else "none (set retention.max_bytes)")
    )
    typer.echo(f"{'camera':<16} {'stored':>10} {'per day':>10} {'days kept':>9} {'days fit':>9}")
    for cam in done["cameras"]:
        fits = cam["days_that_fit"]
        typer.echo(
            f"{cam['camera_id']:<16} {human_bytes(cam['bytes']):>10} "
            f"{human_bytes(cam['bytes_per_day']):>10} {cam['days_stored']:>9} "
            f"{'-' if fits is None else fits:>9}"
        )
    if done["budget_full_at"]:
        typer.echo(f"the budget is reached by {done['budget_full_at']} at this rate")
    if done["disk_full_at"]:
        free = human_bytes(done["disk_free_bytes"])
        typer.echo(f"the disk ({free} free) fills by {done['disk_full_at']} at this rate")
