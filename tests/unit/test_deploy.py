"""deploy/: the systemd units parse and start commands the CLI really has."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from conftest import REPO
from typer.testing import CliRunner

from surveil.cli import app

UNITS = sorted((REPO / "deploy").glob("*.service"))


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
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output
