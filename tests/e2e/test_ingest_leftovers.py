"""Files of a batch killed before its commit are removed by the resume, and only those.

A real child process ingests, writes a batch's JPEGs, and dies (os._exit) before the
catalog commit; the real `surveil ingest` then resumes the source. Another child is held
between writing its files and committing them while other ingests run: its files must
survive, and a second ingest of its very source is refused while it runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from catalog_sql import catalog_rows
from cli_process import cli_env
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.slow

MOT09 = "mot/MOT17-mini/train/MOT17-09-FRCNN/img1"
MOT02 = "mot/MOT17-mini/train/MOT17-02-FRCNN/img1"
MOT04 = "mot/MOT17-mini/train/MOT17-04-FRCNN/img1"

#: argv: source folder, camera, then "die" (at the first commit), "die-after N" (after N
#: commits) or "<written-flag> <go-flag>".
CHILD = textwrap.dedent(
    """
    import os, pathlib, sys, time
    from surveil.config import load_settings
    from surveil.container import build_services
    from surveil.domain import parse_time
    from surveil.ingest.pipeline import IngestOptions
    from surveil.ingest.sources import open_source

    services = build_services(load_settings())
    commit = services.catalog.add_tracked
    done = []

    def before_commit(batch, tracks):
        # Files of this batch are on disk now; its rows are not.
        if sys.argv[3] == "die":
            os._exit(17)
        if sys.argv[3] == "die-after":
            if len(done) == int(sys.argv[4]):
                os._exit(17)
            done.append(1)
            return commit(batch, tracks)
        pathlib.Path(sys.argv[3]).write_text("written")
        while not pathlib.Path(sys.argv[4]).exists():
            time.sleep(0.05)
        return commit(batch, tracks)

    services.catalog.add_tracked = before_commit
    start = parse_time(sys.argv[5], "start") if len(sys.argv) > 5 else None
    source = open_source(sys.argv[1], camera_id=sys.argv[2], start=start)
    services.ingest_pipeline().run(source, IngestOptions(camera_id=sys.argv[2], all_frames=True))
    """
)


@pytest.fixture
def env(tmp_path: Path, shared_data: Path, database_url: str) -> dict[str, str]:
    """The CLI's environment: tmp storage, a fresh database, offline models, 2-frame batches."""
    base = cli_env(
        tmp_path / "data", database_url, shared_data / "models", SURVEIL_INGEST__BATCH_SIZE="4"
    )
    if not database_url.startswith("sqlite"):
        _cli(base, "db", "upgrade")
    return base


def _cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "surveil.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def _child(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _files(env: dict[str, str]) -> set[str]:
    """Every crop and keyframe file on disk (temp files of killed writers included)."""
    root = Path(env["SURVEIL_STORAGE__ROOT"])
    return {
        p.relative_to(root).as_posix()
        for folder in ("crops", "keyframes")
        for p in (root / folder).rglob("*")
        if p.is_file()
    }


def _referenced(env: dict[str, str]) -> set[str]:
    engine = create_engine(env["SURVEIL_DATABASE__URL"])
    try:
        with engine.connect() as conn:
            crops = conn.execute(text("select crop_path from appearances"))
            images = conn.execute(text("select image_path from keyframes"))
            return {str(k) for (k,) in [*crops, *images] if k}
    finally:
        engine.dispose()


def _wait_for(flag: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while not flag.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the child never wrote its files"
        time.sleep(0.1)


def test_a_kill_before_the_commit_leaves_no_file_after_the_resume(
    env: dict[str, str], shared_data: Path
) -> None:
    source = str(shared_data / MOT09)
    killed = _child(env, source, "cam09", "die")
    assert killed.wait(timeout=600) == 17, killed.communicate()[1]
    left = _files(env)
    assert left and not _referenced(env)  # the batch's files, and no row for any of them

    # The resume picks its keyframes anew (here: scene changes, not every frame).
    out = _cli(env, "ingest", source, "--camera", "cam09", "--json")
    assert json.loads(out.stdout)["keyframes"] >= 1
    assert "ingest.leftovers_removed" in out.stderr
    on_disk = _files(env)
    assert on_disk == _referenced(env)  # no file without a row, no row without a file
    assert left - on_disk  # some files the killed run wrote were not rewritten: removed


def test_files_of_a_run_in_progress_are_left_alone(
    env: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    written, go = tmp_path / "written", tmp_path / "go"
    running = _child(env, str(shared_data / MOT09), "cam09", str(written), str(go))
    try:
        _wait_for(written, running)
        in_flight = _files(env)
        assert in_flight and not _referenced(env)

        # Another source on another camera ingests and resumes alongside it.
        _cli(env, "ingest", str(shared_data / MOT02), "--camera", "cam02", "--all-frames")
        assert in_flight <= _files(env)
        # The same source a second time, while it runs: refused, nothing touched.
        again = _cli(env, "ingest", str(shared_data / MOT09), "--camera", "cam09", ok=False)
        assert again.returncode == 2
        assert "being ingested by another process" in again.stderr
        assert in_flight <= _files(env)
    finally:
        go.write_text("go")
        stderr = running.communicate(timeout=600)[1]
    assert running.returncode == 0, stderr
    assert in_flight <= _files(env) == _referenced(env)


Member = tuple[int, float, float, float, float]


def _tracks(env: dict[str, str], camera: str) -> list[tuple[str, int, tuple[Member, ...]]]:
    """A camera's tracks as comparable values: span, size and members (frame, box)."""
    rows = catalog_rows(
        env["SURVEIL_DATABASE__URL"],
        "SELECT t.id, t.label_group, t.appearances, t.closed, a.frame_index, "
        "a.x1, a.y1, a.x2, a.y2 FROM tracks t JOIN appearances a "
        "ON a.track_id = t.id WHERE t.camera_id = :c",
        {"c": camera},
    )
    members: dict[int, list[Member]] = {}
    heads: dict[int, tuple[str, int]] = {}
    for tid, group, count, _closed, frame, x1, y1, x2, y2 in rows:
        heads[tid] = (group, count)
        members.setdefault(tid, []).append(
            (frame, round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))
        )
    return sorted((*heads[t], tuple(sorted(m))) for t, m in members.items())


def test_a_killed_and_resumed_ingest_ends_with_the_same_tracks(
    env: dict[str, str], shared_data: Path
) -> None:
    """Tracks open at the kill are rebuilt from the catalog and continued, not restarted."""
    source = str(shared_data / MOT04)
    env = {**env, "SURVEIL_INGEST__BATCH_SIZE": "2"}
    start = "2026-06-01T09:00:00Z"
    _cli(env, "ingest", source, "--camera", "whole", "--all-frames", "--start", start)
    killed = _child(env, source, "halves", "die-after", "2", start)
    assert killed.wait(timeout=600) == 17, killed.communicate()[1]
    partial = _tracks(env, "halves")
    assert partial  # two batches (4 frames) committed before the kill
    out = _cli(
        env, "ingest", source, "--camera", "halves", "--all-frames", "--start", start, "--json"
    )
    assert json.loads(out.stdout)["resumed_from"] is not None
    whole, resumed = _tracks(env, "whole"), _tracks(env, "halves")
    assert len(whole) >= 10  # MOT17-04's crowd: many tracks, several crossing the kill
    assert resumed == whole
    crossing = [t for t in whole if min(m[0] for m in t[2]) < 4 <= max(m[0] for m in t[2])]
    assert crossing, "no track spans the kill: the test would not exercise the resume"
