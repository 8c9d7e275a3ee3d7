"""Catalog commands: ingest, search, db upgrade, index rebuild/status, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

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
from surveil.container import Services, index_root
from surveil.domain import SearchFilters, parse_time, validate_camera_id


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
    epilog="Example:  surveil search suspect.jpg --label person --camera lobby "
    "--since 2026-11-22T08:00:00Z --min-score 0.6 --json"
)
def search(
    crop: Annotated[Path, typer.Argument(help="Example crop image (JPEG/PNG) of the object.")],
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
        float | None, typer.Option(help="Seconds between hits that split a sighting.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Most appearances to return.", min=1)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find every sighting of the object in CROP, across cameras, ordered by time.

    Audited like an API search, as `cli:<os user>`, refused attempts included.
    """
    from surveil.cli.common import cli_actor
    from surveil.domain import InputError, SurveilError
    from surveil.search.audited import (
        Actor,
        AuditedSearch,
        Example,
        SearchOptions,
        record_refusal,
    )
    from surveil.search.by_example import SearchResult
    from surveil.search.render import result_table, result_to_dict
    from surveil.vision.crops import read_image
    from surveil.vision.images import probe_image

    given = {
        "crop": str(crop),
        "label": label,
        "camera": camera,
        "since": since,
        "until": until,
        "min_score": min_score,
        "gap": gap,
        "limit": limit,
    }

    def outcome(exc: SurveilError) -> str:
        return f"exit {2 if isinstance(exc, InputError) else 1}: {exc}"

    def act(s: Services) -> SearchResult:
        actor = Actor(key_id=None, name=cli_actor(), role="cli")
        try:
            filters = SearchFilters(
                cameras=frozenset(validate_camera_id(c) for c in camera or ()),
                since=parse_time(since, "--since"),
                until=parse_time(until, "--until"),
                labels=frozenset(label or ()),
                min_score=s.settings.search.min_score if min_score is None else min_score,
            )
            image = read_image(crop)
            data = crop.read_bytes()
            header = probe_image(data, what=f"image {crop}")
        except SurveilError as exc:
            given_set = {k: v for k, v in given.items() if v not in (None, [])}
            record_refusal(s.access, actor, reason=outcome(exc), given=given_set, kind="image")
            raise
        audited = AuditedSearch(
            search=s.search(),
            access=s.access,
            blobs=s.blobs,
            catalog=s.catalog,
            jpeg_quality=s.settings.storage.jpeg_quality,
            describe=outcome,
        )
        example = Example(kind="image", image=image, image_bytes=data, image_format=header.format)
        options = SearchOptions(
            filters=filters, label=label[0] if label else None, limit=limit, gap_seconds=gap
        )
        return audited.run(actor, example, options).result

    with handle_errors():
        result = with_services(act, settings=cli_settings())
    if as_json:
        print_json(result_to_dict(result))
    else:
        typer.echo(result_table(result))


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
    from surveil.domain import SPACES
    from surveil.index.reconcile import rebuild

    def act(s: Services) -> dict[str, int]:
        rebuild(
            index_root(s.settings),
            s.catalog,
            SPACES,
            factory=s.settings.index.factory,
            shard_by=s.settings.index.shard_by,
        )
        return {space: s.catalog.count_appearances(space) for space in SPACES}

    with handle_errors():
        counts = with_services(act, reconcile=False)
    if as_json:
        print_json({"rebuilt": counts})
    else:
        typer.echo("rebuilt: " + ", ".join(f"{k} {v} vectors" for k, v in counts.items()))


@index_app.command("status")
def index_status(
    full: Annotated[
        bool, typer.Option("--full", help="Compare every id, not only per-day counts (slow).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile the index with the catalog and print vectors per space."""
    from surveil.domain import SPACES

    def act(s: Services) -> dict[str, int]:
        if full:
            s.reconcile_index(full=True)
        return {sp: s.index.size(sp) for sp in SPACES}

    with handle_errors():
        sizes = with_services(act)
    if as_json:
        print_json({"vectors": sizes})
    else:
        typer.echo(", ".join(f"{k}: {v} vectors" for k, v in sizes.items()))


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
