"""A retention run killed with SIGKILL at any point, then run again, ends exactly as planned.

One test kills the real `surveil retention run` from outside as soon as its first batch
commits; the others kill a run from inside right after a chosen step (a batch commit, a
shard drop, an index save, a file delete), so every gap between the steps is crossed.
The rerun must leave exactly the planned rows, files and vectors, an empty journal, and
nothing for the orphan sweep to find: the journal alone repairs the crash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SettingsFactory
from retention_world import NOW, plant, state
from sqlalchemy import Engine, create_engine, func, select

from surveil.config import Settings
from surveil.container import Services, build_services
from surveil.jobs.retention import retention_parts, run_retention
from surveil.search.render import iso
from surveil.storage.migrate import upgrade
from surveil.storage.tables import AppearanceRow, RetentionJournalRow


@dataclass(frozen=True)
class Plan:
    """What must be left once retention has run to the end."""

    appearances: frozenset[int]
    keyframes: frozenset[int]
    files: frozenset[str]
    total: int


def _planted(settings: Settings, *, count: int) -> Plan:
    if not settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)
    built = build_services(settings, reconcile_index=False)
    try:
        return _plan(built, count)
    finally:
        built.close()


def _plan(services: Services, count: int) -> Plan:
    """A day that expires whole, a day that keeps one held keyframe, and a recent day."""
    whole = plant(services, "a", age_days=40, count=count, labels=("person", "car"))
    partial = plant(services, "b", age_days=35, count=count, labels=("person", "car"))
    recent = plant(services, "a", age_days=3, count=3, labels=("person", "car"))
    services.retention.set_appearance_holds(partial[0].appearance_ids, True)
    kept = [partial[0], *recent]
    every = [*whole, *partial, *recent]
    return Plan(
        appearances=frozenset(i for p in kept for i in p.appearance_ids),
        keyframes=frozenset(p.keyframe_id for p in kept),
        files=frozenset(f for p in kept for f in (p.image_path, *p.crop_paths)),
        total=sum(len(p.appearance_ids) for p in every),
    )


def _finish_and_check(settings: Settings, plan: Plan) -> None:
    """Run again to the end in a fresh process state; check the exact end state."""
    fresh = build_services(settings, reconcile_index=False)
    try:
        report = run_retention(retention_parts(fresh), settings.retention, now=NOW)
        after = state(fresh)
    finally:
        fresh.close()
    assert after.appearances == plan.appearances
    assert after.keyframes == plan.keyframes
    assert after.files == plan.files
    assert after.vectors["person"] | after.vectors["general"] == plan.appearances
    assert after.journal == 0
    assert report.orphans is not None
    orphans = report.orphans.to_dict()
    assert (orphans["files"], orphans["vectors"], orphans["vectors_readded"]) == (0, 0, 0)
    assert orphans["rows_missing_files"] == {"appearances": 0, "keyframes": 0}


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
    env.update(
        SURVEIL_STORAGE__ROOT=str(settings.storage.root),
        SURVEIL_DATABASE__URL=settings.database_url,
        SURVEIL_RETENTION__DAYS="30",
        SURVEIL_RETENTION__BATCH_SIZE="10",
    )
    return env


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        apps = conn.execute(select(func.count()).select_from(AppearanceRow)).scalar_one()
        journal = conn.execute(select(func.count()).select_from(RetentionJournalRow)).scalar_one()
        return int(apps), int(journal)


def test_cli_killed_after_its_first_batch_then_rerun(
    make_settings: SettingsFactory, pg_url: str
) -> None:
    """On PostgreSQL, the production catalog (the other tests here use SQLite for speed)."""
    settings = make_settings(
        **{"database.url": pg_url, "retention.days": 30, "retention.batch_size": 10}
    )
    plan = _planted(settings, count=150)
    cmd = [sys.executable, "-m", "surveil.cli", "retention", "run", "--now", iso(NOW), "--json"]
    proc = subprocess.Popen(cmd, env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    engine = create_engine(settings.database_url)
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if _counts(engine)[0] < plan.total:  # a batch committed: rows gone, journal written
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        apps, journal = _counts(engine)
    finally:
        engine.dispose()
    assert apps > len(plan.appearances) and journal > 0  # killed mid-run, work journalled
    _finish_and_check(settings, plan)


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from surveil.config import load_settings
    from surveil.domain import parse_time
    from surveil.index.sharded import ShardedFaissIndex
    from surveil.jobs.retention import RetentionParts, run_retention
    from surveil.storage.blobs import FileBlobStore
    from surveil.storage.db import make_engine, make_session_factory
    from surveil.storage.repositories import SqlCatalog
    from surveil.storage.retention import SqlRetention
    from surveil.storage.usage import SqlUsage
    from surveil.storage.blobs.local_files import LocalBlobFiles

    step, now = sys.argv[1], parse_time(sys.argv[2], "now")
    settings = load_settings()
    # The real parts, wired by hand: build_services would also pick a torch device (slow).
    sessions = make_session_factory(make_engine(settings.database_url))
    root = settings.storage.root
    parts = RetentionParts(
        SqlRetention(sessions),
        SqlCatalog(sessions),
        ShardedFaissIndex(root / "index", factory=settings.index.factory),
        LocalBlobFiles(FileBlobStore(root)),
        SqlUsage(sessions),
        lambda: 0,
        root,
    )
    owner = {"delete_appearances": parts.store, "delete_keyframes": parts.store,
             "drop_shard": parts.index, "save": parts.index, "delete_many": parts.files}[step]
    real = getattr(owner, step)

    def then_die(*args, **kwargs):
        result = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # as abrupt as a power cut, for this process
        return result

    setattr(owner, step, then_die)
    run_retention(parts, settings.retention, now=now)
    sys.exit(3)  # the step never ran
    """
)


@pytest.mark.parametrize(
    # delete_many: files go in bulk (each thread unlinks a share of the list).
    "step",
    ["delete_appearances", "drop_shard", "save", "delete_many", "delete_keyframes"],
)
def test_killed_right_after_each_step_then_rerun(
    step: str, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(**{"retention.days": 30, "retention.batch_size": 10})
    plan = _planted(settings, count=12)
    script = tmp_path / "crash.py"
    script.write_text(CRASHER)
    done = subprocess.run(
        [sys.executable, str(script), step, iso(NOW)],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    _finish_and_check(settings, plan)
