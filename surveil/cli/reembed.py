"""`surveil index reembed`: move vector spaces to the configured embedding model."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from tqdm import tqdm

from surveil.cli.common import JsonOpt, handle_errors, index_app, print_json, with_services
from surveil.container import Services
from surveil.domain import SPACES, Space, parse_time


@index_app.command(
    "reembed",
    epilog="Examples:  surveil index reembed  |  surveil index reembed --space person --batch 512"
    "  |  surveil index reembed --space general --drop-missing --json",
)
def index_reembed(
    space: Annotated[
        str | None,
        typer.Option(help="Vector space to move: person or general (default: both)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Re-embed only appearances from this time on (ISO 8601). The swap still "
            "needs every appearance of the space on the new model: use it to finish a run, "
            "or when retention has removed the older ones; otherwise the command embeds, "
            "keeps its work and stops, saying so."
        ),
    ] = None,
    batch: Annotated[
        int, typer.Option(help="Crops embedded and committed per batch.", min=1)
    ] = 256,
    drop_missing: Annotated[
        bool,
        typer.Option(
            "--drop-missing",
            help="Delete appearances whose crop blob is gone, in the swap (default: stop and "
            "list them).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-embed the stored crops with the configured embedder, then swap the index.

    Run it after changing an embedder (embedders.person / embedders.general): until then
    searches and alert rules on that space are refused, naming this command, because
    vectors of two models cannot be compared. It embeds every stored crop of the space
    in batches, keeping the new vectors aside (interrupt it and run it again: it
    continues where it stopped); re-embeds alert rules' example crops; then switches
    appearances, tracks' pooled vectors and rule examples to the new model in one
    transaction and rebuilds the space's index. Until that swap, searches keep using
    the old model and the old index. Spaces already on the configured model are left
    as they are.
    """
    spaces = _spaces(space)

    def act(s: Services) -> list[dict[str, Any]]:
        from surveil.index.reembed import ReembedOptions

        options = ReembedOptions(
            batch=batch, since=parse_time(since, "--since"), drop_missing=drop_missing
        )
        reembedder = s.reembedder()
        reports = []
        for sp in spaces:
            bar = tqdm(
                total=reembedder.todo(sp, options.since),
                unit="crop",
                desc=f"reembed {sp}",
                disable=as_json or not sys.stderr.isatty(),
            )
            try:
                reports.append(reembedder.run(sp, options, progress=bar.update).to_dict())
            finally:
                bar.close()
        return reports

    with handle_errors():
        reports = with_services(act, reconcile=False)
    if as_json:
        print_json({"spaces": reports})
        return
    for r in reports:
        typer.echo(_summary(r))


def _spaces(space: str | None) -> tuple[Space, ...]:
    if space is None:
        return SPACES
    for known in SPACES:
        if space == known:
            return (known,)
    raise typer.BadParameter(
        f"unknown space {space!r}; use {' or '.join(SPACES)}", param_hint="--space"
    )


def _summary(r: dict[str, Any]) -> str:
    if not r["swapped"] and not r["embedded"]:
        return f"{r['space']}: already on {r['to_model']} (index holds {r['indexed']} tracks)"
    missing = (
        f"; {r['missing']} crops missing (first ids {r['missing_ids']}), {r['dropped']} dropped"
        if r["missing"]
        else ""
    )
    return (
        f"{r['space']}: {r['from_model']} -> {r['to_model']}: embedded {r['embedded']} crops, "
        f"swapped {r['appearances']} appearances, {r['tracks']} tracks, {r['examples']} rule "
        f"examples; index rebuilt with {r['indexed']} tracks in {r['seconds']:.1f} s{missing}"
    )
