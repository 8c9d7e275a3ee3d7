"""deploy/: the systemd units parse and start commands the CLI really has."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from surveil.config.live import LiveSettings

UNITS = sorted((REPO / "deploy").glob("*.service"))
#: Keys every unit must set to the same value: who it runs as, where, and its sandbox.
SHARED = (
    "Type",
    "User",
    "Group",
    "WorkingDirectory",
    "EnvironmentFile",
    "KillSignal",
    "Restart",
    "RestartSec",
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectControlGroups",
    "RestrictSUIDSGID",
    "LockPersonality",
    "UMask",
    "ReadWritePaths",
)


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def test_the_three_processes_have_units() -> None:
    assert {p.name for p in UNITS} >= {
        "surveil-serve.service",
        "surveil-run.service",
        "surveil-scheduler.service",
    }


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_is_well_formed_and_hardened(path: Path) -> None:
    unit = _unit(path)
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["User"] != "root"
    assert service["KillSignal"] == "SIGTERM"
    assert service["NoNewPrivileges"] == "true"
    assert service["ProtectSystem"] == "strict"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_exec_start_is_a_real_command_line(path: Path) -> None:
    """Every option and subcommand in ExecStart parses with the CLI as it is now.

    `--help` at the end makes Click parse everything before it and then stop, so an
    unknown option or subcommand fails here instead of at the next start of the unit.
    """
    argv = shlex.split(_unit(path)["Service"]["ExecStart"])
    assert Path(argv[0]).name == "surveil"
    assert {"serve", "run", "scheduler"} & set(argv)
    proc = subprocess.run(
        [sys.executable, "-m", "surveil.cli", *argv[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr or proc.stdout


def test_the_units_share_one_hardening() -> None:
    """run and scheduler were added beside serve: none may drift from the others."""
    units = {p.name: _unit(p) for p in UNITS}
    for key in SHARED:
        values = {name: u["Service"].get(key) for name, u in units.items()}
        assert None not in values.values(), (key, values)
        assert len(set(values.values())) == 1, (key, values)
    assert all(
        u["Unit"]["After"] == units["surveil-serve.service"]["Unit"]["After"]
        for u in units.values()
    )
    assert units["surveil-serve.service"]["Service"]["Restart"] == "on-failure"
    assert units["surveil-serve.service"]["Service"]["ProtectHome"] == "true"


def test_stop_timeouts_leave_the_live_drain_its_time() -> None:
    """`run` (and `serve` with live.in_serve) drain within live.shutdown_seconds; systemd
    must not SIGKILL them before that."""
    drain = LiveSettings().shutdown_seconds
    for name in ("surveil-run.service", "surveil-serve.service"):
        assert float(_unit(REPO / "deploy" / name)["Service"]["TimeoutStopSec"]) >= drain + 10


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_every_key(tmp_path: Path) -> None:
    """`systemd-analyze verify` warns on unknown keys and bad values; the units (with
    ExecStart pointing at this environment's `surveil`) must give no warning at all."""
    surveil = Path(sys.executable).parent / "surveil"
    if not surveil.is_file():
        pytest.skip("the surveil console script is not installed in this environment")
    copies = []
    for path in UNITS:
        text = path.read_text(encoding="utf-8").replace(
            "/opt/surveil/.venv/bin/surveil", str(surveil)
        )
        (tmp_path / path.name).write_text(text, encoding="utf-8")
        copies.append(tmp_path / path.name)
    proc = _verify(copies)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    typo = tmp_path / "typo.service"
    typo.write_text(copies[0].read_text().replace("ProtectSystem=", "ProtectSytem="))
    assert "ProtectSytem" in _verify([typo]).stderr  # the check can fail
