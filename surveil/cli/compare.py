"""`surveil compare A.jpg B.jpg`: are two crops the same object? Audited like a search."""

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
    from surveil.search.compare import CropInput


def _crop(path: Path, name: str) -> CropInput:
    """One crop file read and checked (format, decodable), as a CropInput."""
    from surveil.domain import InputError
    from surveil.search.compare import CropInput
    from surveil.vision.crops import decode_image
    from surveil.vision.images import probe_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {name} {path}: {exc.strerror or exc}") from None
    header = probe_image(data, what=f"{name} {path}")
    return CropInput(decode_image(data, what=f"{name} {path}"), data, header.format)


@app.command(epilog="Example:  surveil compare witness.jpg cam3_crop.jpg --label person --json")
def compare(
    crop_a: Annotated[Path, typer.Argument(help="First crop image (JPEG/PNG/WebP/BMP).")],
    crop_b: Annotated[Path, typer.Argument(help="Second crop image (JPEG/PNG/WebP/BMP).")],
    label: Annotated[
        str | None,
        typer.Option(
            "--label",
            help="What both crops show (person, car...): picks the embedding space for both. "
            "Default: the detector labels each crop; two different spaces are refused.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare two crops: their similarity, the space used, and a verdict with its threshold.

    "Same object likely" when the similarity reaches the search floor of that space.

    Exits 0 whatever the verdict; audited like a search, as `cli:<os user>`.
    """
    from surveil.search.audited import Actor
    from surveil.search.compare import AuditedCompare, Comparison

    def act(s: Services) -> Comparison:
        a, b = _crop(crop_a, "crop A"), _crop(crop_b, "crop B")
        audited = AuditedCompare(search=s.search(), access=s.access, blobs=s.blobs)
        actor = Actor(key_id=None, name=cli_actor(), role="cli")
        return audited.run(actor, a, b, label=label)[0]

    with handle_errors():
        found = with_services(act, settings=cli_settings(), reconcile=False)
    if as_json:
        print_json(found.to_dict())
    else:
        typer.echo(found.verdict())
