"""README command 1, then every command of the README's Use section, in a fresh clone.

The commands are read from README.md itself, so an edit that breaks one fails here. The
clone runs on this venv's Python (PYTHONPATH at the clone: torch is not reinstalled);
`.venv/bin/surveil` in the README becomes that interpreter running the clone's CLI.
The sample data is ../shared/data as the README says, with the demo's 139 s lobby video
cut to its first seconds so the walk-through fits in a few minutes on two cores.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOBBY = Path("videos/intel_sample_videos/one-by-one-person-detection.mp4")
LOBBY_FRAMES = 120
VENV_SURVEIL = ".venv/bin/surveil"


def readme_use_commands(readme: str) -> list[str]:
    """The `.venv/bin/surveil` commands of the Use section's first bash block, joined."""
    section = readme.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README's Use section has no bash block"
    joined = match.group(1).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.startswith(VENV_SURVEIL)]


def _sample_data(root: Path, shared: Path) -> Path:
    """../shared/data for the clone: links to the real files, a short lobby video."""
    data = root / "shared" / "data"
    (data / LOBBY.parent).mkdir(parents=True)
    for name in ["models", "reid", "mot", "MANIFEST.md"]:
        (data / name).symlink_to(shared / name)
    for video in (shared / "videos").iterdir():
        if video.name != LOBBY.parts[1]:
            (data / "videos" / video.name).symlink_to(video)
    _cut(shared / LOBBY, data / LOBBY, LOBBY_FRAMES)
    return data


def _cut(src: Path, dest: Path, frames: int) -> None:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    ok, frame = cap.read()
    out = cv2.VideoWriter(
        str(dest), cv2.VideoWriter.fourcc(*"mp4v"), fps, (frame.shape[1], frame.shape[0])
    )
    for _ in range(frames):
        if not ok:
            break
        out.write(frame)
        ok, frame = cap.read()
    out.release()
    cap.release()


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"{shlex.join(cmd)}\n{proc.stderr[-3000:]}"
    assert "error:" not in proc.stderr, proc.stderr[-3000:]
    return proc


def test_readme_use_section_runs_verbatim_after_the_demo(tmp_path: Path, shared_data: Path) -> None:
    commands = readme_use_commands((REPO / "README.md").read_text(encoding="utf-8"))
    assert any(" ingest " in c for c in commands) and any(" search " in c for c in commands)
    clone = tmp_path / "surveil"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    _sample_data(tmp_path, shared_data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
    env["PYTHONPATH"] = str(clone)
    cli = [sys.executable, "-m", "surveil.cli"]

    demo = _run([*cli, "demo", "--data", "../shared/data"], clone, env)
    assert "settings: wrote surveil.yaml" in demo.stdout
    assert (clone / "surveil.yaml").is_file()

    # The clone's own README, verbatim, with its venv's `surveil` mapped to this venv.
    shim = f'surveil_cli() {{ {shlex.join(cli)} "$@"; }}\n'
    for command in readme_use_commands((clone / "README.md").read_text(encoding="utf-8")):
        line = "surveil_cli" + command[len(VENV_SURVEIL) :]
        proc = _run(["bash", "-c", shim + line], clone, env)
        if " search " in command and "--json" in command:
            result = json.loads(proc.stdout)
            assert result["sightings"], command
            assert result["warnings"] == [], command
        if " ingest " in command and "--json" in command:
            assert json.loads(proc.stdout)["warnings"] == [], command
