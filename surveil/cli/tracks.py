"""`surveil tracks ...`: track what was stored before tracks, and look at one track."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from tqdm import tqdm

from surveil.cli.common import JsonOpt, app, handle_errors, print_json, with_services
from surveil.container import Services

tracks_app = typer.Typer(
    help="Tracks: one object followed through one camera.", no_args_is_help=True
)
app.add_typer(tracks_app, name="tracks")


@tracks_app.command("backfill", epilog="Example:  surveil tracks backfill --json")
def backfill(as_json: JsonOpt = False) -> None:
    """Track appearances stored before tracks existed (after `surveil db upgrade`).

    The upgrade made each of them a track of its own, so search kept working; this runs
    the tracker over them, camera by camera, from the stored boxes and embeddings.
    Safe to interrupt and run again.
    """

    def act(s: Services) -> dict[str, Any]:
        bar = tqdm(unit="appearance", desc="backfill", disable=as_json or not sys.stderr.isatty())
        try:
            return s.backfill().run(progress=bar.update).to_dict()
        finally:
            bar.close()

    with handle_errors():
        report = with_services(act)
    if as_json:
        print_json(report)
    else:
        typer.echo(
            f"re-tracked {report['appearances']} appearances into {report['tracks']} tracks"
            + ("" if report["appearances"] else " (nothing to do: every appearance is tracked)")
        )


@tracks_app.command("show", epilog="Example:  surveil tracks show 42 --json")
def show(
    track_id: Annotated[int, typer.Argument(help="Track id (track_id in search results).")],
    as_json: JsonOpt = False,
) -> None:
    """One track: camera, label, first and last seen, and its appearances in time order."""
    from surveil.domain import NotFoundError
    from surveil.search.render import iso

    def act(s: Services) -> dict[str, Any]:
        found = s.catalog.tracks([track_id])
        if not found:
            raise NotFoundError(f"no track with id {track_id}")
        track = found[0]
        members = s.catalog.track_members([track_id]).get(track_id, [])
        return {
            "id": track.id,
            "camera_id": track.camera_id,
            "label": track.label,
            "label_group": track.label_group,
            "first_seen": iso(track.first_ts),
            "last_seen": iso(track.last_ts),
            "appearances": track.appearances,
            "best_appearance_id": track.best_appearance_id,
            "closed": track.closed,
            "members": [
                {"id": a.id, "ts": iso(a.ts), "label": a.label, "keyframe_id": a.keyframe_id}
                for a in members
            ],
        }

    with handle_errors():
        data = with_services(act)
    if as_json:
        print_json(data)
        return
    typer.echo(
        f"track {data['id']} on {data['camera_id']}: {data['label']}, "
        f"{data['first_seen']} .. {data['last_seen']}, {data['appearances']} appearances"
        + ("" if data["closed"] else " (open)")
    )
    for m in data["members"]:
        typer.echo(f"  {m['ts']}  appearance {m['id']}  {m['label']}  keyframe {m['keyframe_id']}")
