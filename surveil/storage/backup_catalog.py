"""The catalog half of a backup: SQLite's online backup API, or pg_dump/pg_restore.

SQLite is copied through `sqlite3.Connection.backup` in one step, a consistent snapshot
while ingest keeps writing (WAL). PostgreSQL is dumped with
`pg_dump --format=custom` (one consistent snapshot, restorable into a newer server) and
read back with `pg_restore`; both tools come with the PostgreSQL client package.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url

from surveil.domain import ConfigError, InputError
from surveil.storage.db import make_engine, mask_url

#: The catalog file's name inside a backup, by dialect.
CATALOG_FILES = {"sqlite": "catalog.sqlite3", "postgresql": "catalog.pgdump"}
#: SQLite pages per step of the online backup: all in one step, under one read
#: transaction, so a writer's commits (WAL) cannot restart it; writers are not blocked.
SQLITE_PAGES_PER_STEP = -1
#: Longest a dump or restore may run before it is called stuck, in seconds.
PG_TOOL_TIMEOUT_S = 6 * 3600


def dialect_of(url: str) -> str:
    """'sqlite' or 'postgresql': the only catalogs a backup knows how to copy."""
    name = make_url(url).get_backend_name()
    if name not in CATALOG_FILES:
        raise ConfigError(f"backup: cannot copy a {name} catalog (SQLite or PostgreSQL only)")
    return name


def sqlite_path(url: str) -> Path:
    """The file of a SQLite catalog URL (an in-memory catalog has nothing to back up)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ConfigError(f"backup: {url} is not a SQLite file")
    return Path(database).expanduser()


def dump_catalog(url: str, target: Path) -> None:
    """Write a consistent copy of the catalog at `url` to `target`."""
    if dialect_of(url) == "sqlite":
        source = sqlite3.connect(sqlite_path(url))
        copy = sqlite3.connect(target)
        try:
            source.backup(copy, pages=SQLITE_PAGES_PER_STEP)
        finally:
            copy.close()
            source.close()
        return
    _pg_tool("pg_dump", url, "--format=custom", "--no-owner", "--no-privileges", f"--file={target}")


def restore_catalog(url: str, source: Path) -> None:
    """Load a dumped catalog into the (emptied) catalog at `url`."""
    if dialect_of(url) == "sqlite":
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        dump = sqlite3.connect(source)
        live = sqlite3.connect(path)
        try:
            dump.backup(live, pages=SQLITE_PAGES_PER_STEP)
        finally:
            live.close()
            dump.close()
        return
    _pg_tool("pg_restore", url, "--no-owner", "--no-privileges", "--exit-on-error", str(source))


def catalog_tables(url: str) -> list[str]:
    """The tables the catalog at `url` holds now (none: safe to restore into)."""
    if dialect_of(url) == "sqlite" and not sqlite_path(url).is_file():
        return []
    engine = make_engine(url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def empty_catalog(url: str) -> None:
    """Drop every table of the catalog at `url` (restore --force), views and sequences with them."""
    if dialect_of(url) == "sqlite":
        path = sqlite_path(url)
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        return
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for name in inspect(conn).get_table_names():
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it (not argv)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    bare = parsed.set(drivername="postgresql", password=None)
    return bare.render_as_string(hide_password=False), env


def _pg_tool(tool: str, url: str, *args: str) -> None:
    """Run pg_dump or pg_restore against `url`; any failure is one line naming the cause."""
    found = shutil.which(tool)
    if found is None:
        raise ConfigError(
            f"backup: {tool} not found on PATH; install the PostgreSQL client "
            "(Debian/Ubuntu: apt-get install postgresql-client) matching the server's version"
        )
    dsn, env = _libpq(url)
    proc = subprocess.run(
        [found, f"--dbname={dsn}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=PG_TOOL_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        why = lines[0] if lines else f"exit status {proc.returncode}"
        if "No space left" in proc.stderr:
            raise ConfigError(f"backup: {tool}: no space left on device ({why})")
        raise InputError(f"backup: {tool} failed for {mask_url(url)}: {why}")
