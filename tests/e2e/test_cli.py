"""The `surveil` command as a user runs it: output contracts, bad input, crash recovery.

Every command runs in a real subprocess against a real catalog; bad input must give
one `error:` line, a non-zero exit, and leave the catalog and the data directory as
they were.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from catalog_sql import catalog_rows
from cli_process import cli_env
from sqlalchemy import create_engine, text

MOT09 = "mot/MOT17-mini/train/MOT17-09-FRCNN"
QUERY = "reid/market1501_person_search_demo/query/0001_c1s1_001051_00.jpg"


@pytest.fixture
def env(tmp_path: Path, shared_data: Path, database_url: str) -> dict[str, str]:
    """A clean environment pointing the CLI at tmp storage, a fresh DB and offline models."""
    base = cli_env(tmp_path / "data", database_url, shared_data / "models")
    if not database_url.startswith("sqlite"):
        _run(base, "db", "upgrade")
    return base


def _run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
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


def _counts(env: dict[str, str]) -> dict[str, int]:
    engine = create_engine(env["SURVEIL_DATABASE__URL"])
    try:
        with engine.connect() as conn:
            return {
                t: int(conn.execute(text(f"select count(*) from {t}")).scalar_one())
                for t in ("keyframes", "appearances")
            }
    finally:
        engine.dispose()


def _files(env: dict[str, str]) -> set[str]:
    root = Path(env["SURVEIL_STORAGE__ROOT"])
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "catalog.db" not in p.name
    }


def _ingest_mot09(env: dict[str, str], shared_data: Path) -> dict[str, Any]:
    proc = _run(
        env,
        "ingest",
        str(shared_data / MOT09 / "img1" / "%06d.jpg"),
        "--camera",
        "cam09",
        "--start",
        "2026-03-01T10:00:00Z",
        "--all-frames",
        "--json",
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_ingest_then_search_json_contract(env: dict[str, str], shared_data: Path) -> None:
    stats = _ingest_mot09(env, shared_data)
    assert stats["frames_read"] == 4 and stats["keyframes"] == 4
    assert stats["appearances"] > 0

    # A stranger's crop: --min-score -1 asks for the whole ranked list (the calibrated
    # default floor would rightly return nothing), so the contract has rows to check.
    proc = _run(
        env, "search", str(shared_data / QUERY), "--label", "person", "--min-score", "-1", "--json"
    )
    out = json.loads(proc.stdout)
    assert set(out) == {"sightings", "truncated", "warnings"} and out["sightings"]
    # The real detector and embedder ran, and fewer hits came than the limit: nothing to say.
    assert out["warnings"] == [] and out["truncated"] is False
    firsts = [s["first_seen"] for s in out["sightings"]]
    assert firsts == sorted(firsts)
    for s in out["sightings"]:
        assert set(s) == {
            "camera_id",
            "label",
            "first_seen",
            "last_seen",
            "best_score",
            "appearances",
            "track_id",
        }
        assert isinstance(s["track_id"], int)
        assert s["first_seen"].endswith("Z") and s["first_seen"].startswith("2026-03-01T10:00")
        for a in s["appearances"]:
            assert set(a) == {
                "id",
                "camera_id",
                "ts",
                "frame_index",
                "label",
                "confidence",
                "bbox",
                "score",
                "keyframe_id",
                "track_id",
            }
            assert a["track_id"] == s["track_id"]  # a sighting is one track
            assert 0 <= a["frame_index"] <= 3
            x1, y1, x2, y2 = a["bbox"]
            assert 0 <= x1 < x2 <= 1920 and 0 <= y1 < y2 <= 1080  # original frame pixels
        times = [a["ts"] for a in s["appearances"]]
        assert times == sorted(times)


def test_a_cut_search_says_why_in_json_and_table(env: dict[str, str], shared_data: Path) -> None:
    """Cut at --limit, or stopped at search.max_candidates: the JSON names the reason and
    the table says what to do; an uncut answer keeps the old key set (above)."""
    _ingest_mot09(env, shared_data)
    # The same frames as a second camera: more person tracks than the shallowest search.
    frames = str(shared_data / MOT09 / "img1" / "%06d.jpg")
    _run(env, "ingest", frames, "--camera", "cam10", "--start", "2026-03-01T11:00:00Z")
    query = [str(shared_data / QUERY), "--label", "person", "--min-score", "-1"]
    whole = json.loads(_run(env, "search", *query, "--json").stdout)
    assert len(whole["sightings"]) > 10 and whole["truncated"] is False
    assert "truncated_reason" not in whole

    out = json.loads(_run(env, "search", *query, "--limit", "2", "--json").stdout)
    assert set(out) == {"sightings", "truncated", "truncated_reason", "warnings"}
    assert (out["truncated"], out["truncated_reason"], len(out["sightings"])) == (True, "limit", 2)
    table = _run(env, "search", *query, "--limit", "2").stdout
    assert "raise --limit or narrow the time window" in table
    # The table names the search's audit id: feedback and evidence export refer to it.
    audit_id = int(table.rsplit("\nsearch ", 1)[1].split(" ", 1)[0])
    assert f"surveil export search {audit_id} -o" in table

    shallow = {**env, "SURVEIL_SEARCH__MAX_CANDIDATES": "10"}  # the least it takes
    out = json.loads(_run(shallow, "search", *query, "--json").stdout)
    assert (out["truncated"], out["truncated_reason"]) == (True, "max_candidates")
    assert len(out["sightings"]) == 10  # under the limit (50), but more matched deeper
    table = _run(shallow, "search", *query).stdout
    assert "stopped at search.max_candidates" in table and "raise search.max_candidates" in table


def test_reingest_is_refused_and_changes_nothing(env: dict[str, str], shared_data: Path) -> None:
    _ingest_mot09(env, shared_data)
    before, files = _counts(env), _files(env)
    proc = _run(env, "ingest", str(shared_data / MOT09 / "img1"), "--camera", "cam09", ok=False)
    assert proc.returncode == 2
    assert "already ingested" in proc.stderr
    assert _counts(env) == before and _files(env) == files


def _bad_inputs(tmp: Path, shared: Path) -> list[tuple[list[str], str]]:
    fake_video = tmp / "fake.mp4"
    fake_video.write_text("not a video at all\n")
    not_image = tmp / "notes.jpg"
    not_image.write_text("hello\n")
    empty = tmp / "empty.jpg"
    empty.write_bytes(b"")
    query = str(shared / QUERY)
    empty_dir = tmp / "empty-dir"
    empty_dir.mkdir()
    corrupt_dir = tmp / "corrupt-dir"
    corrupt_dir.mkdir()
    (corrupt_dir / "000001.jpg").write_bytes(b"\xff\xd8 truncated")
    return [
        (["ingest", str(tmp / "missing.mp4"), "--camera", "x"], "missing.mp4"),
        (["ingest", str(fake_video), "--camera", "x"], "fake.mp4"),
        (["ingest", str(empty_dir), "--camera", "x"], "empty-dir"),
        (["ingest", str(shared / MOT09 / "img1"), "--camera", "../evil"], "camera id"),
        (["ingest", str(corrupt_dir), "--camera", "x"], "no frame"),
        (
            ["ingest", str(shared / MOT09 / "img1"), "--camera", "x", "--start", "yesterday"],
            "--start",
        ),
        (["search", str(not_image)], "notes.jpg"),
        (["search", str(empty)], "empty.jpg"),
        (["search", str(tmp / "nope.png")], "nope.png"),
        (["search", query, "--since", "noon-ish"], "--since"),
        (["search", query, "--since", "2026-03-02T00:00:00Z", "--until", "2026-03-01"], "after"),
        (["search", query, "--camera", "no-such-cam"], "unknown camera"),
        (["search", query, "--min-score", "7"], "min-score"),
        (["search", query, "--label", "person", "--label", "car"], "embedding spaces"),
    ]


def test_bad_input_is_one_clear_line_and_changes_nothing(
    env: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    _ingest_mot09(env, shared_data)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    before, files = _counts(env), _files(env)
    for args, mention in _bad_inputs(bad_dir, shared_data):
        proc = _run(env, *args, ok=False)
        assert proc.returncode not in (0, 1), (args, proc.returncode, proc.stderr)
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1, (args, proc.stderr)
        assert mention in lines[0], (args, lines[0])
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
    assert _counts(env) == before
    # Nothing lost or changed; a search refused once it ran keeps its crop for the audit.
    after = _files(env)
    assert files <= after and all(f.startswith("audit/") for f in after - files)


def test_bad_settings_exit_with_the_key_named(env: dict[str, str], shared_data: Path) -> None:
    proc = _run(
        {**env, "SURVEIL_DETECTOR__CONFIDENCE": "2"}, "search", str(shared_data / QUERY), ok=False
    )
    assert proc.returncode == 3
    assert "detector.confidence" in proc.stderr

    proc = _run(
        {**env, "SURVEIL_EMBEDDERS__PERSON__WEIGHTS": "/nowhere/osnet.onnx"},
        "search",
        str(shared_data / QUERY),
        "--label",
        "person",
        ok=False,
    )
    assert proc.returncode == 3
    assert "SURVEIL_EMBEDDERS__PERSON__WEIGHTS" in proc.stderr


CRASH = textwrap.dedent(
    """
    import os, sys
    from surveil.config import load_settings
    from surveil.container import build_services
    from surveil.ingest.pipeline import IngestOptions
    from surveil.ingest.sources import open_source

    services = build_services(load_settings())
    # Die for real the moment the index would be saved: after the catalog commits.
    services.index.save = lambda: os._exit(17)
    source = open_source(sys.argv[1], camera_id="cam09")
    services.ingest_pipeline().run(source, IngestOptions(camera_id="cam09", all_frames=True))
    """
)


def test_crash_between_catalog_commit_and_index_save_loses_nothing(
    env: dict[str, str], shared_data: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, str(shared_data / MOT09 / "img1")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 17, proc.stderr
    committed = _counts(env)["appearances"]
    assert committed > 0
    index_dir = Path(env["SURVEIL_STORAGE__ROOT"]) / "index"
    assert not list(index_dir.rglob("*.faiss")), "the crash came before any index save"

    status = json.loads(_run(env, "index", "status", "--json").stdout)
    # Reconciled on start: one vector per committed track (fewer than appearances).
    assert status["vectors"] == status["tracks"]
    assert 0 < sum(status["tracks"].values()) <= committed

    out = json.loads(
        _run(
            env,
            "search",
            str(shared_data / QUERY),
            "--label",
            "person",
            "--min-score",
            "-1",
            "--json",
        ).stdout
    )
    frames = {a["frame_index"] for s in out["sightings"] for a in s["appearances"]}
    assert frames == {0, 1, 2, 3}  # every committed keyframe is searchable again
    assert _index_ids(env) == _catalog_ids(env)

    # Running the interrupted ingest again resumes after the last committed keyframe.
    before = _counts(env)
    again = json.loads(
        _run(
            env,
            "ingest",
            str(shared_data / MOT09 / "img1"),
            "--camera",
            "cam09",
            "--all-frames",
            "--json",
        ).stdout
    )
    assert again["resumed_from"] == 3 and again["keyframes"] == 0
    assert _counts(env) == before


def _catalog_ids(env: dict[str, str]) -> set[int]:
    return {int(r[0]) for r in catalog_rows(env["SURVEIL_DATABASE__URL"], "select id from tracks")}


def _index_ids(env: dict[str, str]) -> set[int]:
    from surveil.domain import SPACES
    from surveil.index.sharded import ShardedFaissIndex

    index = ShardedFaissIndex(Path(env["SURVEIL_STORAGE__ROOT"]) / "index")
    return {int(i) for space in SPACES for ids in index.ids_by_day(space).values() for i in ids}
