"""The real `surveil` command in a subprocess, as an operator's shell or cron runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

#: The offline models in ../shared/data/models the CLI is pointed at (see MANIFEST.md).
DETECTOR_WEIGHTS = "yolov8n_int8_dynamic.onnx"
PERSON_WEIGHTS = "osnet_x0_25_msmt17.onnx"


def cli_env(
    root: Path, database_url: str, models: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a CLI run: no inherited SURVEIL_*, `root` storage, this catalog.

    With `models` (the shared models folder) the offline detector and person embedder
    are named explicitly, as an operator's settings would; `extra` adds SURVEIL_* values.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
    env.update(SURVEIL_STORAGE__ROOT=str(root), SURVEIL_DATABASE__URL=database_url)
    if models is not None:
        env.update(
            SURVEIL_MODEL_DIR=str(models),
            SURVEIL_DETECTOR__WEIGHTS=str(models / DETECTOR_WEIGHTS),
            SURVEIL_EMBEDDERS__PERSON__WEIGHTS=str(models / PERSON_WEIGHTS),
        )
    env.update(extra)
    return env


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


def start_serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """`surveil serve` on loopback `port` as a plain process, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "surveil.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(server: subprocess.Popen[str], port: int, timeout: float) -> None:
    """Poll /readyz until 200; fail with the server's output if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        assert time.monotonic() < deadline, f"serve did not become ready in {timeout:.0f} s"
        time.sleep(0.2)
