"""`surveil embedder tune`: fine-tune the person embedder on the site's own tracks."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from surveil.cli.common import JsonOpt, app, audit_cli, cli_settings, handle_errors, print_json
from surveil.domain import Space

embedder_app = typer.Typer(help="The embedding models.", no_args_is_help=True)
app.add_typer(embedder_app, name="embedder")

_EPILOG = (
    "Examples:  surveil embedder tune --minutes 5   |   "
    "surveil embedder tune --from-dir crops/ --held-out holdout/ --epochs 8 --json"
)


@embedder_app.command("tune", epilog=_EPILOG)
def tune(
    space: Annotated[str, typer.Option(help="Vector space whose embedder to tune.")] = "person",
    epochs: Annotated[int, typer.Option(help="Passes over the training crops.")] = 8,
    minutes: Annotated[
        float | None, typer.Option(help="Stop after this many minutes, even mid-epoch.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the new ONNX model (default: models dir, dated)."),
    ] = None,
    from_dir: Annotated[
        Path | None,
        typer.Option(help="Learn from labelled crops (one sub-folder per identity) instead."),
    ] = None,
    held_out: Annotated[
        Path | None,
        typer.Option(help="Labelled crops (sub-folder per identity) to score before and after."),
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only tracks seen from this UTC time on.")
    ] = None,
    per_track: Annotated[int, typer.Option(min=2, help="Crops used per track at most.")] = 16,
    max_tracks: Annotated[
        int, typer.Option(min=2, help="Newest tracks used at most (bounds memory).")
    ] = 2000,
    train_from: Annotated[
        str, typer.Option(help="First layer that learns (conv1..conv5, fc); earlier stay frozen.")
    ] = "conv4",
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 3e-4,
    seed: Annotated[int, typer.Option(help="Random seed (sampling, flips, init order).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune an embedder with batch-hard triplets on the site's tracks; write a new model.

    A track's appearances are one person, tracks seen in the same keyframe are different
    people, and confirmed matches join tracks. The result is a NEW model file (a new model
    id): nothing changes until the space's weights point at it and `surveil index reembed`
    has re-embedded the archive. Only ONNX embedders (the person space's OSNet) can be tuned.
    """
    from surveil.vision.embedder import resolve_weights
    from surveil.vision.tune.data import from_dir as read_dir
    from surveil.vision.tune.run import tune_embedder
    from surveil.vision.tune.train import TuneOptions

    with handle_errors():
        settings = cli_settings()
        if space not in ("person", "general"):
            raise typer.BadParameter(f"unknown space {space!r}; use person or general")
        name: Space = "person" if space == "person" else "general"
        emb = settings.embedders.person if name == "person" else settings.embedders.general
        weights = resolve_weights(name, emb, settings.models_path)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = out or settings.models_path / f"{weights.stem}-tuned-{stamp}.onnx"
        options = TuneOptions(
            epochs=epochs, minutes=minutes, lr=lr, seed=seed, train_from=train_from,
            height=emb.input_height, width=emb.input_width,
        )  # fmt: skip
        holdout = read_dir(held_out) if held_out else None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # the option says UTC; the catalog stores UTC
        bar = tqdm(unit="step", desc="tune", disable=as_json or not sys.stderr.isatty())

        def step(n: int) -> None:
            bar.update(n)

        def run(data: Any) -> Any:
            return tune_embedder(
                space=name, settings=emb, weights=weights, data=data, options=options,
                out=target, held_out=holdout, progress=step,
            )  # fmt: skip

        try:
            if from_dir is not None:
                report = run(read_dir(from_dir))
            else:
                report = _from_catalog(settings, name, since, (per_track, max_tracks), run)
        finally:
            bar.close()
    _print(report.to_dict(), as_json)


def _from_catalog(settings: Any, space: Any, since: Any, limits: tuple[int, int], run: Any) -> Any:
    """Train on the catalog's tracks; the run is audited like other administrative actions."""
    from surveil.cli.common import with_services
    from surveil.vision.tune.site import from_catalog

    def act(s: Any) -> Any:
        data = from_catalog(
            s.engine, s.blobs, space=space, since=since, per_track=limits[0], max_tracks=limits[1]
        )
        report = run(data)
        audit_cli(s, "embedder.tune", f"{space}: {report.model} from {len(data.crops)} crops")
        return report

    return with_services(act, settings=settings, reconcile=False)


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    r = data["result"]
    typer.echo(
        f"tuned {data['space']} embedder on {data['crops']} crops of {data['identities']} "
        f"identities ({data['source']}): {r['steps']} steps, {r['epochs']} epochs in "
        f"{r['seconds']} s, loss {r['first_loss']} -> {r['last_loss']}"
    )
    if data["before"] and data["after"]:
        b, a = data["before"], data["after"]
        typer.echo(
            f"held-out ({b['queries']} queries): rank-1 {b['rank1']:.3f} -> {a['rank1']:.3f}, "
            f"mAP {b['map']:.3f} -> {a['map']:.3f}"
        )
    typer.echo(f"wrote {data['path']} (model {data['model']})")
    typer.echo(f"to adopt it: {data['adopt']}")
