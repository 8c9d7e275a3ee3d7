"""`surveil backup create|restore`: the catalog, the media and the index, as one folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from surveil.cli.common import JsonOpt, app, cli_settings, handle_errors, print_json

backup_app = typer.Typer(
    help="Back up the catalog, crops/keyframes and vector index; restore them.",
    no_args_is_help=True,
)
app.add_typer(backup_app, name="backup")

FolderArg = Annotated[
    Path, typer.Argument(help="The backup folder.", metavar="FOLDER", show_default=False)
]


def _bar(desc: str, as_json: bool) -> Any:
    return tqdm(unit="file", desc=desc, disable=as_json or not sys.stderr.isatty())


@backup_app.command(
    "create",
    epilog="Example:  surveil backup create /srv/backups/surveil-$(date +%F)",
)
def backup_create(out_dir: FolderArg, as_json: JsonOpt = False) -> None:
    """Back up the catalog, the media and the FAISS shards into a new, empty folder.

    The catalog goes through SQLite's online backup API or `pg_dump --format=custom`;
    manifest.json records versions, the schema revision, each space's model, row counts
    and every file's SHA-256. Safe while serve, run and the scheduler keep working; local
    files are hard-linked where FOLDER is on the same file system, so copy the folder to
    another disk or host afterwards.
    """
    from surveil.storage.backup import create_backup

    with handle_errors(), _bar("backup", as_json) as bar:
        done = create_backup(cli_settings(), out_dir, progress=lambda _: bar.update())
    if as_json:
        print_json(done)
        return
    typer.echo(
        f"backed up {done['counts']['appearances']} appearances, {done['files']} files "
        f"({done['bytes']} bytes) at revision {done['alembic_revision']} to {done['folder']}; "
        f"index {done['index']}"
    )


@backup_app.command(
    "restore",
    epilog="Example:  surveil backup restore /srv/backups/surveil-2026-12-01",
)
def backup_restore(
    in_dir: FolderArg,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a catalog, media or index that is not empty."),
    ] = False,
    rebuild_index: Annotated[
        bool,
        typer.Option(
            "--rebuild-index", help="Rebuild the index from the catalog instead of restoring it."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify a backup, restore catalog, media and index, and migrate forward.

    Nothing changes unless every file matches the manifest's SHA-256 and the catalog,
    media and index are empty (or --force). Stop serve, run and the scheduler first.
    """
    from surveil.storage.restore import restore_backup

    with handle_errors(), _bar("restore", as_json) as bar:
        done = restore_backup(
            cli_settings(),
            in_dir,
            force=force,
            rebuild_index=rebuild_index,
            progress=lambda _: bar.update(),
        )
    if as_json:
        print_json(done)
        return
    idx = done["index"]
    typer.echo(
        f"restored {done['counts']['appearances']} appearances, {done['media_files']} media "
        f"files; catalog migrated {done['from_revision']} -> {done['revision']}; "
        f"index {idx['action']}"
    )
