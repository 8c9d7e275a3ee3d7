"""`surveil retention run` and `surveil hold`: the JSON contract, --now, env days, holds.

The real run goes through a real `surveil` process; the dry runs and hold commands go
through the same Typer app in-process (each process start costs seconds on two cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import SettingsFactory
from retention_world import NOW, Planted, plant, state
from typer.testing import CliRunner

from surveil.cli import app
from surveil.config import Settings
from surveil.container import Services, build_services
from surveil.search.render import iso

FIVE = ("appearances", "keyframes", "vectors", "files", "bytes")


@dataclass
class World:
    settings: Settings
    services: Services
    old: list[Planted]
    env: dict[str, str]


@pytest.fixture
def world(make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    settings = make_settings()  # SQLite: the embedded default
    services = build_services(settings, reconcile_index=False)
    old = plant(services, "lobby", age_days=40, count=2)
    plant(services, "lobby", age_days=10)
    plant(services, "gate", age_days=45, labels=("car",))
    env = {"SURVEIL_STORAGE__ROOT": str(settings.storage.root), "SURVEIL_RETENTION__DAYS": "30"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        yield World(settings, services, old, env)
    finally:
        services.close()


def _cli(*args: str, code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    if code:
        return {"stderr": result.stderr}
    out: dict[str, Any] = json.loads(result.stdout) if "--json" in args else {}
    return out


def _dry(now: str = iso(NOW)) -> dict[str, Any]:
    return _cli("retention", "run", "--dry-run", "--now", now, "--json")


def test_run_json_contract_with_now_and_env_days(world: World) -> None:
    before = state(world.services)
    dry = _dry()
    assert {k: dry[k] for k in FIVE} == {
        "appearances": 3,
        "keyframes": 3,
        "vectors": 3,
        "files": 6,
        "bytes": 3 * 10 + 3 * 100,
    }
    assert dry["dry_run"] is True and set(dry["per_camera"]) == {"lobby", "gate"}
    assert state(world.services) == before
    assert _dry("2026-11-18T00:00:00Z")["appearances"] == 1  # then only gate's was 30+ days old

    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
    done = subprocess.run(
        [sys.executable, "-m", "surveil.cli", "retention", "run", "--now", iso(NOW), "--json"],
        env={**env, **world.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout)
    assert {k: report[k] for k in FIVE} == {k: dry[k] for k in FIVE}
    assert report["dry_run"] is False and report["orphans"]["files"] == 0
    assert "retention.done" in done.stderr  # every run is logged with its counts
    assert len(state(world.services).appearances) == 1


def test_env_days_set_the_default(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURVEIL_RETENTION__DAYS", "50")
    assert all(_dry()[k] == 0 for k in FIVE)
    monkeypatch.setenv("SURVEIL_RETENTION__DAYS", "42.5")
    assert _dry()["appearances"] == 1  # the 45-day-old car


def test_readable_summary_without_json(world: World) -> None:
    result = CliRunner().invoke(app, ["retention", "run", "--dry-run", "--now", iso(NOW)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("would remove 3 appearances, 3 keyframes, 3 vectors")
    assert "lobby: 2 appearances" in result.stdout


def test_hold_set_and_clear_commands(world: World) -> None:
    held = _cli("hold", "set", "--camera", "lobby", "--json")
    assert held == {"legal_hold": True, "cameras": ["lobby"], "appearances": []}
    assert set(_dry()["per_camera"]) == {"gate"}
    _cli("hold", "clear", "--camera", "lobby", "--json")
    ids = [str(p.appearance_ids[0]) for p in world.old]
    held = _cli("hold", "set", "--appearance", ids[0], "--appearance", ids[1], "--json")
    assert held["appearances"] == sorted(int(i) for i in ids)
    assert _dry()["appearances"] == 1
    cleared = _cli("hold", "clear", "--appearance", ids[0], "--json")
    assert cleared == {"legal_hold": False, "cameras": [], "appearances": [int(ids[0])]}
    assert _dry()["appearances"] == 2

    trail = world.services.access.audit_entries(action="hold.set")
    details = sorted(e.entry.detail or "" for e in trail)
    assert details == sorted(["camera lobby", f"appearance {ids[0]}", f"appearance {ids[1]}"])
    assert all(e.entry.key_name.startswith("cli:") for e in trail)
    assert len(world.services.access.audit_entries(action="hold.clear")) == 2


def test_hold_refuses_unknown_targets_without_changing_anything(world: World) -> None:
    missing = _cli("hold", "set", "--camera", "lobby", "--appearance", "999999", code=2)
    assert "no appearance with id 999999" in missing["stderr"]
    assert "no camera 'nowhere'" in _cli("hold", "set", "--camera", "nowhere", code=2)["stderr"]
    assert "at least one" in _cli("hold", "set", code=2)["stderr"]
    assert set(_dry()["per_camera"]) == {"lobby", "gate"}  # lobby was not put on hold
    assert world.services.access.audit_entries(action="hold.set") == []


def test_storage_estimate_json_contract_and_the_env_budget(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEIL_RETENTION__MAX_BYTES", "1 MB")
    out = _cli("storage", "estimate", "--json")
    assert out["budget_bytes"] == 1_000_000
    assert isinstance(out["bytes_stored"], int) and out["bytes_stored"] > 4 * 110
    cams = {c["camera_id"]: c for c in out["cameras"]}
    assert set(cams) == {"lobby", "gate"}
    for cam in cams.values():
        assert {"camera_id", "bytes", "bytes_per_day", "days_that_fit"} <= cam.keys()
        assert isinstance(cam["bytes"], int) and isinstance(cam["bytes_per_day"], int)
        assert cam["days_that_fit"] > 0
    assert abs(sum(c["bytes"] for c in cams.values()) - out["bytes_stored"]) <= 2
    text = CliRunner().invoke(app, ["storage", "estimate"])
    assert text.exit_code == 0 and "lobby" in text.stdout and "1.0 MB" in text.stdout


def test_run_json_counts_removals_by_reason(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Age takes the 40+ day footage (3 frames); a budget under the one frame left takes it."""
    est = _cli("storage", "estimate", "--json")
    one_frame = est["bytes_stored"] // 4  # four frames alike: one crop and one image each
    monkeypatch.setenv("SURVEIL_RETENTION__MAX_BYTES", str(one_frame // 2))
    done = _cli("retention", "run", "--now", iso(NOW), "--json")
    assert {k: done[k] for k in FIVE}.keys() == set(FIVE)  # the contract fields stay
    assert done["reason"]["age"]["appearances"] == 3
    assert done["reason"]["budget"]["appearances"] == 1
    assert done["appearances"] == 4 and done["budget"]["unmet_bytes"] == 0
