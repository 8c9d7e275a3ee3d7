"""The OpenAPI document is the truth: schemathesis finds no server error and no mismatch.

`st run` (every check, positive and negative data, examples + coverage + fuzzing phases,
a few examples per operation) runs against the real app served on loopback over the real
catalog, with an admin key so every route is reached. Key revocation is left out: a random
id could revoke the keys the other API tests share. Bounded by --max-time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from api_world import ApiWorld, serving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: Examples per operation and phase, and the wall-clock budget of the whole run.
EXAMPLES = 5
MAX_SECONDS = 120
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _run_schemathesis(base_url: str, key: str, report: Path) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    cmd = [
        str(st),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        "--request-timeout",
        "30",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--workers",
        "1",
        "--seed",
        "9",
        "--exclude-method",
        "DELETE",
        "--exclude-path-regex",
        "^/api/v1/keys/",
        "--continue-on-failure",
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        cmd, check=False, capture_output=True, text=True, env=env, timeout=MAX_SECONDS + 120
    )


def test_schemathesis_finds_no_server_error_and_no_mismatch(
    api_world: ApiWorld, tmp_path: Path
) -> None:
    report = tmp_path / "events.ndjson"
    with serving(api_world.app, name="schemathesis") as base_url:
        done = _run_schemathesis(base_url, api_world.keys["admin"], report)
    (tmp_path / "st.log").write_text(done.stdout)
    tail = done.stdout[-6000:]
    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    print(summary)  # operations, test cases and failures, for the record
    assert done.returncode == 0, f"schemathesis found failures (exit {done.returncode}):\n{tail}"
