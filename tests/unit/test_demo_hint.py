"""The demo's closing hint names `surveil` the way the user can type it right now."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from surveil.demo import _command

VENV_BIN = Path(sys.executable).parent


def test_bare_name_when_the_venv_is_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(VENV_BIN))
    assert _command() == "surveil"


def test_the_venv_script_when_it_is_not_activated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no surveil on PATH, as before `activate`
    monkeypatch.chdir(VENV_BIN.parent.parent)
    assert _command() == str(Path(VENV_BIN.parent.name, "bin", "surveil"))
    monkeypatch.chdir(tmp_path)  # elsewhere: the absolute path
    assert _command() == str(VENV_BIN / "surveil")
