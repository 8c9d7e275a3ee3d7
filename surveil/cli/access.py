"""Access commands: API keys (`surveil keys ...`) and the audit trail (`surveil audit`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from surveil.api.views import audit_view, key_view
from surveil.cli.common import JsonOpt, app, audit_cli, handle_errors, print_json, with_services
from surveil.container import Services
from surveil.domain import ROLES, InputError, Role, parse_time

keys_app = typer.Typer(help="API keys for the HTTP API and console.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _role(text: str) -> Role:
    for role in ROLES:
        if text == role:
            return role
    raise InputError(f"--role must be one of {', '.join(ROLES)}, not {text!r}")


@keys_app.command(
    "create", epilog="Example:  surveil keys create --role operator --name alice --json"
)
def keys_create(
    role: Annotated[str, typer.Option(help="viewer (read), operator (search) or admin.")],
    name: Annotated[str, typer.Option(help="Who or what holds the key (a person, a service).")],
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""

    def act(s: Services) -> dict[str, Any]:
        info, key = s.access.create_key(name=name, role=_role(role))
        audit_cli(s, "key.create", f"key {info.id} ({info.name}, {info.role})")
        return {"id": info.id, "name": info.name, "role": info.role, "key": key}

    with handle_errors():
        created = with_services(act, reconcile=False)
    if as_json:
        print_json(created)
    else:
        typer.echo(f"key {created['id']} ({created['name']}, {created['role']}): {created['key']}")
        typer.echo("store it now: it is not shown again", err=True)


@keys_app.command("list")
def keys_list(
    active: Annotated[bool, typer.Option("--active", help="Hide revoked keys.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List keys (never the keys themselves: a prefix to recognise each)."""
    with handle_errors():
        keys = with_services(
            lambda s: s.access.list_keys(include_revoked=not active), reconcile=False
        )
    if as_json:
        print_json({"keys": [key_view(k) for k in keys]})
        return
    if not keys:
        typer.echo("no keys yet: surveil keys create --role admin --name <you>")
        return
    typer.echo(f"{'id':>4}  {'name':<20} {'role':<9} {'prefix':<10} {'last used':<24} status")
    for k in keys:
        used = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never"
        status = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        typer.echo(f"{k.id:>4}  {k.name:<20.20} {k.role:<9} {k.prefix:<10} {used:<24} {status}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `surveil keys list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""

    def act(s: Services) -> dict[str, Any]:
        info = s.access.revoke_key(key_id)
        audit_cli(s, "key.revoke", f"key {info.id} ({info.name})")
        return key_view(info)

    with handle_errors():
        revoked = with_services(act, reconcile=False)
    if as_json:
        print_json(revoked)
    else:
        typer.echo(f"key {revoked['id']} ({revoked['name']}) revoked at {revoked['revoked_at']}")


@app.command(epilog="Example:  surveil audit --action search --since 2026-11-22T00:00:00Z --json")
def audit(
    since: Annotated[str | None, typer.Option(help="From (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to (ISO 8601).")] = None,
    action: Annotated[
        str | None, typer.Option(help="search, key.create, key.revoke, camera.update, ...")
    ] = None,
    key_id: Annotated[int | None, typer.Option("--key", help="Only this key's actions.")] = None,
    limit: Annotated[int, typer.Option(help="Most entries, newest first.", min=1)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List the audit trail: every search (who, crop hash, filters, results) and admin change."""
    with handle_errors():
        since_ts, until_ts = parse_time(since, "--since"), parse_time(until, "--until")
        rows = with_services(
            lambda s: s.access.audit_entries(
                since=since_ts, until=until_ts, action=action, key_id=key_id, limit=limit
            ),
            reconcile=False,
        )
    entries = [audit_view(r) for r in rows]
    if as_json:
        print_json({"entries": entries})
        return
    if not entries:
        typer.echo("no audit entries match")
        return
    for e in entries:
        what = e["query_kind"] or e["detail"] or ""
        crop = f" crop={e['crop_sha256'][:12]}" if e["crop_sha256"] else ""
        results = f" results={e['result_count']}" if e["result_count"] is not None else ""
        typer.echo(
            f"{e['ts']}  #{e['id']:<5} {e['key_name']:<16.16} {e['action']:<14} "
            f"{e['status']:<8} {what}{crop}{results}"
        )
