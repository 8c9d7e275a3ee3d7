"""Catalog commands: ingest, search, db upgrade, index rebuild/status, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from surveil.cli.common import (
    JsonOpt,
    app,
    cli_settings,
    db_app,
    handle_errors,
    index_app,
    print_json,
    with_services,
)
from surveil.container import Services, shared_index
from surveil.domain import SearchFilters, parse_time, validate_camera_id

if TYPE_CHECKING:
    from surveil.search.audited import Example


@app.command(
    epilog="Examples:  surveil ingest lobby.mp4 --camera lobby --start 2026-11-22T08:00:00Z  "
    "|  surveil ingest 'img1/%06d.jpg' --camera plaza --fps 30 --json"
)
def ingest(
    path: Annotated[str, typer.Argument(help="Video file, image pattern (img1/%06d.jpg) or dir.")],
    camera: Annotated[str, typer.Option("--camera", help="Camera id the media came from.")],
    start: Annotated[
        str | None, typer.Option(help="Capture time of the first frame (ISO 8601; default mtime).")
    ] = None,
    all_frames: Annotated[
        bool, typer.Option("--all-frames", help="Keep every frame, not only keyframes.")
    ] = False,
    fps: Annotated[
        float | None, typer.Option(help="Frame rate of an image sequence (default: seqinfo.ini).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest recorded media: keyframes, detections and embeddings into the catalog."""
    from surveil.ingest.pipeline import IngestOptions

    options = IngestOptions(
        camera_id=camera, all_frames=all_frames, progress=sys.stderr.isatty() and not as_json
    )
    with handle_errors():
        validate_camera_id(camera)
        start_ts = parse_time(start, "--start")
        stats = with_services(lambda s: s.ingest(path, options, start=start_ts, fps=fps))
    if as_json:
        print_json(stats.to_dict())
    else:
        typer.echo(stats.summary())


@app.command(
    epilog="Examples:  surveil search suspect.jpg --label person --camera lobby "
    "--since 2026-11-22T08:00:00Z --min-score 0.6 --json  |  surveil search --track 42 --path"
)
def search(
    crop: Annotated[
        Path | None,
        typer.Argument(help="Example crop image (JPEG/PNG) of the object; or give --track."),
    ] = None,
    track: Annotated[
        int | None,
        typer.Option(
            "--track",
            help="Find similar to a stored track (its pooled vector: all its crops at once); "
            "track ids are in the results and in `surveil tracks show`.",
            min=1,
        ),
    ] = None,
    appearance: Annotated[
        int | None,
        typer.Option("--appearance", help="Find similar to one stored appearance.", min=1),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="What the crop shows (person, car...): picks the embedding space and keeps "
            "only appearances with this label (repeatable). Default: detect, no filter.",
        ),
    ] = None,
    camera: Annotated[
        list[str] | None, typer.Option("--camera", help="Only these cameras (repeatable).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Only at or before (ISO 8601).")] = None,
    min_score: Annotated[
        float | None, typer.Option(help="Minimum cosine similarity (-1..1).")
    ] = None,
    gap: Annotated[
        float | None,
        typer.Option(
            help="No longer used: a sighting is one track (kept for old scripts).", hidden=True
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Most sightings (tracks) to return.", min=1)
    ] = None,
    path: Annotated[
        bool,
        typer.Option(
            "--path",
            help="Also show the path across cameras: legs in time order, the time between "
            "cameras, and legs that overlap another camera's (one of them is someone else).",
        ),
    ] = False,
    rerank: Annotated[
        bool | None,
        typer.Option(
            "--rerank/--no-rerank",
            help="Re-rank the candidates by k-reciprocal neighbours before the cut at --limit "
            "(scores stay cosine; --min-score still applies). Default: setting "
            "search.rerank.mode.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find every sighting of the object in CROP (or of a stored track), ordered by time.

    Audited like an API search, as `cli:<os user>`, refused attempts included.
    """
    from surveil.cli.common import cli_actor
    from surveil.domain import InputError, SurveilError
    from surveil.search.audited import (
        Actor,
        AuditedResult,
        AuditedSearch,
        SearchOptions,
        record_refusal,
    )
    from surveil.search.render import result_table, result_to_dict

    given = {
        "crop": None if crop is None else str(crop),
        "track": track,
        "appearance": appearance,
        "label": label,
        "camera": camera,
        "since": since,
        "until": until,
        "min_score": min_score,
        "gap": gap,
        "limit": limit,
        "rerank": rerank,
    }

    def outcome(exc: SurveilError) -> str:
        return f"exit {2 if isinstance(exc, InputError) else 1}: {exc}"

    def act(s: Services) -> AuditedResult:
        actor = Actor(key_id=None, name=cli_actor(), role="cli")
        try:
            filters = SearchFilters(
                cameras=frozenset(validate_camera_id(c) for c in camera or ()),
                since=parse_time(since, "--since"),
                until=parse_time(until, "--until"),
                labels=frozenset(label or ()),
                min_score=s.settings.search.min_score if min_score is None else min_score,
            )
            example = _cli_example(crop, track, appearance)
        except SurveilError as exc:
            given_set = {k: v for k, v in given.items() if v not in (None, [])}
            kind = "image" if crop is not None else None
            record_refusal(s.access, actor, reason=outcome(exc), given=given_set, kind=kind)
            raise
        audited = AuditedSearch(
            search=s.search(),
            access=s.access,
            blobs=s.blobs,
            catalog=s.catalog,
            jpeg_quality=s.settings.storage.jpeg_quality,
            describe=outcome,
        )
        options = SearchOptions(
            filters=filters,
            label=label[0] if label else None,
            limit=limit,
            gap_seconds=gap,
            rerank=rerank,
        )
        return audited.run(actor, example, options)

    with handle_errors():
        done = with_services(act, settings=cli_settings())
    if as_json:
        print_json(result_to_dict(done.result, path=path))
    else:
        typer.echo(result_table(done.result, path=path))
        # The audit id names this search for feedback, re-runs and evidence export.
        typer.echo(
            f"search {done.audit_id} (audit id): surveil feedback mark confirmed "
            f"--search {done.audit_id} --track T · surveil export search {done.audit_id} -o F.zip"
        )


def _cli_example(crop: Path | None, track: int | None, appearance: int | None) -> Example:
    """Exactly one of a crop file, --track or --appearance, as the example to search by."""
    from surveil.domain import InputError
    from surveil.search.audited import Example
    from surveil.vision.crops import read_image
    from surveil.vision.images import probe_image

    given = [n for n, v in (("CROP", crop), ("--track", track), ("--appearance", appearance)) if v]
    if len(given) != 1:
        raise InputError(
            "give exactly one of: a CROP image, --track ID or --appearance ID"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    if track is not None:
        return Example(kind="track", track_id=track)
    if appearance is not None:
        return Example(kind="appearance", appearance_id=appearance)
    assert crop is not None
    image = read_image(crop)
    data = crop.read_bytes()
    header = probe_image(data, what=f"image {crop}")
    return Example(kind="image", image=image, image_bytes=data, image_format=header.format)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (run once per release on PostgreSQL)."""
    from surveil.storage.db import mask_url
    from surveil.storage.migrate import upgrade

    with handle_errors():
        settings = cli_settings()
        if settings.database_url.startswith("sqlite"):
            settings.storage.root.mkdir(parents=True, exist_ok=True)
        upgrade(settings.database_url, revision)
    typer.echo(f"database at {mask_url(settings.database_url)} is at revision {revision}")


@index_app.command("rebuild")
def index_rebuild(as_json: JsonOpt = False) -> None:
    """Rebuild every vector index from the embeddings stored in the catalog."""

    def act(s: Services) -> dict[str, int]:
        return {str(space): n for space, n in s.rebuild_index().items()}

    with handle_errors():
        counts = with_services(act, reconcile=False)
    if as_json:
        print_json({"rebuilt": counts})
    else:
        typer.echo("rebuilt: " + ", ".join(f"{k} {v} vectors" for k, v in counts.items()))


@index_app.command("train")
def index_train(as_json: JsonOpt = False) -> None:
    """Train every shard that is due (sealed days past index.exact_below) now, and wait.

    Ingest and `surveil run` train shards in the background as days end; this is for a
    catalog upgraded from exact shards, or to finish training before a benchmark.
    """
    from surveil.domain import SPACES
    from surveil.index.sharded import ShardedFaissIndex
    from surveil.index.status import shard_lines, shard_status

    def act(s: Services) -> dict[str, Any]:
        trained = s.index.train_now() if isinstance(s.index, ShardedFaissIndex) else 0
        return {"trained": trained, "shards": {sp: shard_status(s.index, sp) for sp in SPACES}}

    with handle_errors():
        result = with_services(act)
    if as_json:
        print_json(result)
        return
    typer.echo(f"trained {result['trained']} shard(s)")
    for sp in SPACES:
        for line in shard_lines(sp, result["shards"][sp]):
            typer.echo(line)


@index_app.command("status")
def index_status(
    full: Annotated[
        bool, typer.Option("--full", help="Compare every id, not only per-day counts (slow).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile the index with the catalog; print vectors, tracks, appearances, shards.

    The index holds one pooled vector per track, so vectors equal tracks when in sync.
    Shards are exact or compressed; a compressed one shows the recall it measured on
    itself when it was trained (see index.recall_target).
    """
    from surveil.domain import SPACES
    from surveil.index.status import backend_line, backend_status, shard_lines, shard_status

    def act(s: Services) -> dict[str, Any]:
        if full or shared_index(s.settings):  # a shared index is not reconciled at start
            s.reconcile_index(full=full)
        return {
            "index": backend_status(s.index),
            "vectors": {sp: s.index.size(sp) for sp in SPACES},
            "tracks": {sp: s.catalog.count_tracks(sp) for sp in SPACES},
            "appearances": {sp: s.catalog.count_appearances(sp) for sp in SPACES},
            "shards": {sp: shard_status(s.index, sp) for sp in SPACES},
        }

    with handle_errors():
        status = with_services(act)
    if as_json:
        print_json(status)
        return
    typer.echo(backend_line(status["index"]))
    typer.echo(
        ", ".join(
            f"{sp}: {status['vectors'][sp]} vectors ({status['tracks'][sp]} tracks of "
            f"{status['appearances'][sp]} appearances)"
            for sp in SPACES
        )
    )
    for sp in SPACES:
        for line in shard_lines(sp, status["shards"][sp]):
            typer.echo(line)


@app.command()
def demo(
    data: Annotated[
        Path | None,
        typer.Option(help="Local sample data (models/, videos/, reid/); default: download."),
    ] = None,
) -> None:
    """Ingest real sample video into the embedded default and run a search."""
    from surveil.demo import plan_demo, run_demo

    with handle_errors():
        plan = plan_demo(data)
        typer.echo(run_demo(cli_settings(plan.overrides), plan))
