"""`surveil config show`: the effective settings and where each value came from."""

from __future__ import annotations

from typing import Any

import typer

from surveil.cli.common import JsonOpt, _state, app, cli_settings, handle_errors, print_json
from surveil.config import config_path, setting_sources
from surveil.storage.db import mask_url

config_app = typer.Typer(help="Settings in effect.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _masked(value: Any) -> Any:
    """A URL's password hidden (database and webhook URLs may carry one)."""
    if isinstance(value, str) and "://" in value and "@" in value:
        return mask_url(value)
    return value


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@config_app.command("show", epilog="Example:  surveil config show --json")
def show(as_json: JsonOpt = False) -> None:
    """Print every setting: value and source (default < file < environment)."""
    with handle_errors():
        settings = cli_settings()
        rows = setting_sources(settings, _state.get("config"))
    path = config_path(_state.get("config"))
    entries = [(name, _masked(value), source) for name, value, source in rows]
    # An unset database.url means a real catalog all the same: say which one.
    catalog = {"value": mask_url(settings.database_url), "source": "effective"}
    if as_json:
        print_json(
            {
                "config_file": str(path) if path else None,
                "settings": {n: {"value": v, "source": s} for n, v, s in entries},
                "catalog": catalog,
            }
        )
        return
    typer.echo(f"config file: {path if path else 'none (defaults and environment only)'}")
    width = max(len(name) for name, _, _ in entries)
    for name, value, source in entries:
        note = f" -> {catalog['value']}" if name == "database.url" and value is None else ""
        typer.echo(f"{name:<{width}}  {_text(value)}{note}  ({source})")
