"""The real `surveil` command in a subprocess, as an operator's shell or cron runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_cli(
    env: dict[str, str], *args: str, code: int | None = 0, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `surveil ARGS`; assert its exit status is `code` (None: any status)."""
    proc = subprocess.run(
        [sys.executable, "-m", "surveil.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if code is not None:
        assert proc.returncode == code, proc.stderr
    return proc


def cli_json(env: dict[str, str], *args: str, timeout: float = 600) -> Any:
    """Run `surveil ARGS --json` successfully and parse what it printed."""
    return json.loads(run_cli(env, *args, "--json", timeout=timeout).stdout)
