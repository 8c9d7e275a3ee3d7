"""A newcomer's CLI: settings found again, shown with their source, no silent degradation.

Real subprocesses in a working directory of their own (./surveil.yaml is read from it),
real SQLite, real models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from surveil.demo import plan_demo, write_demo_config

CAR_VIDEO = "videos/intel_sample_videos/car-detection.mp4"
MOT09_FRAMES = "mot/MOT17-mini/train/MOT17-09-FRCNN/img1/%06d.jpg"
QUERY = "reid/market1501_person_search_demo/query/0001_c1s1_001051_00.jpg"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No SURVEIL_* from the developer's shell; data under tmp_path (SQLite)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
    base["SURVEIL_STORAGE__ROOT"] = str(tmp_path / "data")
    base["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return base


def _cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surveil.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return errors[0]


def test_missing_weights_stop_ingest_and_search_with_the_fix(
    tmp_path: Path, env: dict[str, str], shared_data: Path
) -> None:
    # The defaults (yolo11n.pt, offline): no download attempt, no motion fallback.
    ingest = _cli(tmp_path, env, "ingest", str(shared_data / CAR_VIDEO), "--camera", "parking")
    assert ingest.returncode == 3, ingest.stderr
    line = _one_error_line(ingest)
    assert "'yolo11n.pt' not found" in line and "detector.weights" in line
    search = _cli(tmp_path, env, "search", str(shared_data / QUERY), "--json")
    assert search.returncode == 3, search.stderr
    assert "detector.weights" in _one_error_line(search)
    assert search.stdout == ""


def test_demo_settings_file_is_read_again_and_shown_with_sources(
    tmp_path: Path, env: dict[str, str], shared_data: Path
) -> None:
    plan = plan_demo(shared_data)
    assert write_demo_config(plan, tmp_path / "surveil.yaml").startswith("settings: wrote")
    assert "already holds" in write_demo_config(plan, tmp_path / "surveil.yaml")
    env["SURVEIL_DATABASE__URL"] = "postgresql+psycopg://surveil:hunter2@db.example/surveil"
    env["SURVEIL_SEARCH__LIMIT"] = "7"
    shown = _cli(tmp_path, env, "config", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout
    data = json.loads(shown.stdout)
    assert data["config_file"] == "surveil.yaml"
    rows = data["settings"]
    weights = str(shared_data.resolve() / "models" / "yolov8n_int8_dynamic.onnx")
    assert rows["detector.weights"] == {"value": weights, "source": "file surveil.yaml"}
    assert rows["search.limit"] == {"value": 7, "source": "environment SURVEIL_SEARCH__LIMIT"}
    assert rows["database.url"]["source"] == "environment SURVEIL_DATABASE__URL"
    assert "***" in rows["database.url"]["value"]
    assert rows["detector.fallback_to_motion"] == {"value": False, "source": "default"}
    text = _cli(tmp_path, env, "config", "show")
    assert text.returncode == 0 and "hunter2" not in text.stdout
    assert "detector.weights" in text.stdout and "(file surveil.yaml)" in text.stdout
    assert data["catalog"]["value"] == rows["database.url"]["value"]

    # Unset, database.url still names the catalog in use: SQLite in storage.root.
    env.pop("SURVEIL_DATABASE__URL")
    env["SURVEIL_STORAGE__ROOT"] = str(tmp_path / "site-data")
    catalog = json.loads(_cli(tmp_path, env, "config", "show", "--json").stdout)["catalog"]
    assert catalog["value"] == f"sqlite:///{tmp_path / 'site-data' / 'catalog.db'}"
    line = next(
        ln
        for ln in _cli(tmp_path, env, "config", "show").stdout.splitlines()
        if ln.startswith("database.url")
    )
    assert "null -> sqlite:///" in line and "(default)" in line

    # Someone else's surveil.yaml is never overwritten.
    other = tmp_path / "other"
    other.mkdir()
    (other / "surveil.yaml").write_text("device: cpu\n")
    said = write_demo_config(plan, other / "surveil.yaml")
    assert "not overwritten" in said and "detector.weights=" in said
    assert (other / "surveil.yaml").read_text() == "device: cpu\n"


def test_degraded_mode_and_old_footage_are_said_in_every_result(
    tmp_path: Path, env: dict[str, str], shared_data: Path
) -> None:
    write_demo_config(plan_demo(shared_data), tmp_path / "surveil.yaml")
    env["SURVEIL_DETECTOR__BACKEND"] = "motion"
    frames = str(shared_data / MOT09_FRAMES)
    args = ["--camera", "plaza", "--all-frames", "--start", "2020-01-01T00:00:00Z", "--json"]
    ingest = _cli(tmp_path, env, "ingest", frames, *args)
    assert ingest.returncode == 0, ingest.stderr
    warnings = json.loads(ingest.stdout)["warnings"]
    assert any(w.startswith("motion detector in use") for w in warnings), warnings
    late = [w for w in warnings if "older than its retention" in w]
    assert late and "from 2020-01-01" in late[0] and "retention.days" in late[0], warnings

    search = _cli(tmp_path, env, "search", str(shared_data / QUERY), "--json")
    assert search.returncode == 0, search.stderr
    assert any("motion detector in use" in w for w in json.loads(search.stdout)["warnings"])
    table = _cli(tmp_path, env, "search", str(shared_data / QUERY))
    assert table.returncode == 0 and "motion detector in use" in table.stdout
