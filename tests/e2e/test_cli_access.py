"""`surveil keys` and `surveil audit` as other tools call them (JSON contracts), and `serve`."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path

import httpx
import pytest
from cli_process import cli_env, cli_json, run_cli, start_serve, wait_ready
from streams import free_port


@pytest.fixture
def env(tmp_path: Path, database_url: str, shared_data: Path) -> dict[str, str]:
    # serve loads the models a search needs before it says ready: give it the offline ones.
    base = cli_env(tmp_path / "data", database_url, shared_data / "models")
    if not database_url.startswith("sqlite"):
        _run(base, "db", "upgrade")
    return base


#: Key, audit and serve commands are quick: a hung one fails in 5 minutes, not 10.
_run = partial(run_cli, timeout=300)
_json = partial(cli_json, timeout=300)


def test_keys_create_list_revoke_contract(env: dict[str, str]) -> None:
    created = _json(env, "keys", "create", "--role", "operator", "--name", "alice")
    assert set(created) == {"id", "name", "role", "key"}
    assert created["role"] == "operator" and created["key"].startswith("svk_")
    listed = _json(env, "keys", "list")["keys"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert created["key"] not in json.dumps(listed)  # shown once, never again
    assert listed[0]["revoked_at"] is None and listed[0]["prefix"] == created["key"][:8]
    revoked = _json(env, "keys", "revoke", str(created["id"]))
    assert revoked["revoked_at"]
    assert _json(env, "keys", "list", "--active")["keys"] == []
    actions = [e["action"] for e in _json(env, "audit")["entries"]]
    assert actions == ["key.revoke", "key.create"]  # newest first, CLI actions too


def test_keys_bad_input_is_one_error_line(env: dict[str, str]) -> None:
    proc = _run(env, "keys", "create", "--role", "root", "--name", "x", code=2)
    assert proc.stderr.strip().startswith("error: --role must be one of viewer, operator, admin")
    proc = _run(env, "keys", "revoke", "42", code=2)
    assert "no API key with id 42" in proc.stderr
    proc = _run(env, "audit", "--since", "yesterday", code=2)
    assert "ISO 8601" in proc.stderr


def test_serve_starts_answers_and_stops_on_sigterm(env: dict[str, str]) -> None:
    key = _json(env, "keys", "create", "--role", "viewer", "--name", "probe")["key"]
    port = free_port()
    server = start_serve(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(server, port, 60)
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["name"] == "probe"
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
