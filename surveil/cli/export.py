"""`surveil export ...`: evidence archives of a sighting, a past search or an alert; verify."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from surveil.cli.common import (
    JsonOpt,
    app,
    cli_actor,
    cli_settings,
    handle_errors,
    print_json,
    with_services,
)
from surveil.container import Services

if TYPE_CHECKING:
    from surveil.search.evidence.service import Exported

export_app = typer.Typer(
    help="Evidence archives (zip: files as stored, manifest, SHA-256 of every file, report).",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")

OutOpt = Annotated[
    Path,
    typer.Option(
        "--output", "-o", help="Archive to write (.zip); replaced atomically.", dir_okay=False
    ),
]


def _export(kind: str, subject_id: int, out: Path, as_json: bool) -> None:
    """Write the archive as `cli:<os user>`, audited, and say where and what."""
    from surveil.search.audited import Actor

    def act(s: Services) -> Exported:
        actor = Actor(key_id=None, name=cli_actor(), role="cli")
        return s.exporter().export(actor, kind, subject_id, out)

    with handle_errors():
        done = with_services(act, settings=cli_settings(), reconcile=False)
    info = {
        "path": str(done.path),
        "sha256": done.sha256,
        "items": done.items,
        "missing": done.missing,
        "audit_id": done.audit_id,
    }
    if as_json:
        print_json(info)
        return
    gone = f", {done.missing} file(s) gone from storage" if done.missing else ""
    typer.echo(f"wrote {done.path}: {done.items} item(s){gone}; sha256 {done.sha256}")


@export_app.command("sighting")
def export_sighting(
    track_id: Annotated[int, typer.Argument(help="The track (sighting) id.", min=1)],
    output: OutOpt,
    as_json: JsonOpt = False,
) -> None:
    """Export one sighting (track): every crop and keyframe of it, as stored."""
    _export("sighting", track_id, output, as_json)


@export_app.command("search")
def export_search(
    audit_id: Annotated[
        int, typer.Argument(help="The search's audit entry id (`surveil audit`).", min=1)
    ],
    output: OutOpt,
    as_json: JsonOpt = False,
) -> None:
    """Export the sightings a past search returned, with its query crop and audit entry.

    Nothing is re-run: the archive holds what the audit trail recorded for that search.
    """
    _export("search", audit_id, output, as_json)


@export_app.command("alert")
def export_alert(
    alert_id: Annotated[int, typer.Argument(help="The alert id (`surveil alerts list`).", min=1)],
    output: OutOpt,
    as_json: JsonOpt = False,
) -> None:
    """Export an alert: its appearance and track in the alert's span, the rule's examples."""
    _export("alert", alert_id, output, as_json)


@export_app.command("verify")
def export_verify(
    archive: Annotated[Path, typer.Argument(help="The archive to check.", dir_okay=False)],
    as_json: JsonOpt = False,
) -> None:
    """Re-check every file's SHA-256, the manifest's, and the signature when a key is set.

    Exits 0 when the archive is intact; otherwise prints the first bad file and exits 1.
    """
    from surveil.search.evidence.archive import verify_archive

    with handle_errors():
        key = cli_settings().export.hmac_key
        done = verify_archive(
            archive, hmac_key=None if key is None else key.get_secret_value().encode()
        )
    if as_json:
        print_json({"ok": True, "files": done.files, "signed": done.signed})
        return
    signed = "signature checked" if done.signed else "not signed-checked (no export.hmac_key)"
    typer.echo(f"{archive}: intact, {done.files} file hashes match; {signed}")
