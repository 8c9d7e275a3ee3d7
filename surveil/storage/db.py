"""Engine and session factory construction; nothing here runs at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import ConfigError

#: How long SQLite waits on a lock held by another process before failing, in ms.
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: How long a PostgreSQL connection attempt may take before we call the server unreachable.
PG_CONNECT_TIMEOUT_S = 10


def mask_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (API, search) run while ingest writes; NORMAL sync is safe under WAL.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> Engine:
    """Create an engine tuned for the dialect: WAL SQLite, or a pre-pinged PostgreSQL pool."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"database.url {url!r} is not a valid SQLAlchemy URL "
            "(expected e.g. postgresql+psycopg://user@host/db or sqlite:///path/catalog.db)"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the folder {folder} for the SQLite catalog: {exc.strerror} "
                    "(check storage.root or database.url)"
                ) from exc
        engine = create_engine(parsed, echo=echo)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    try:
        engine = create_engine(
            parsed,
            echo=echo,
            pool_pre_ping=True,
            pool_size=pool_size,
            connect_args=connect_args,
        )
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"cannot use database.url {mask_url(url)}: {exc} (check the driver part of the URL)"
        ) from exc
    if parsed.get_driver_name() == "psycopg":
        event.listen(engine, "before_cursor_execute", _binary_results)
    return engine


#: Execution option: fetch this statement's rows in PostgreSQL's binary format.
BINARY_RESULTS = "surveil_binary_results"


def _binary_results(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """Ask psycopg for binary rows where a read says so (BINARY_RESULTS).

    In text format a bytea arrives hex-encoded, twice its size, encoded by the server and
    decoded here: for a search's member vectors (a few MB) the binary format measured
    several times faster. Only for reads whose column types load the same either way.
    """
    if context is not None and context.execution_options.get(BINARY_RESULTS):
        from psycopg.pq import Format

        cursor.format = Format.BINARY


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """The one session factory; objects stay readable after commit (no lazy reloads)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def check_connection(engine: Engine) -> None:
    """Connect once so an unreachable database fails at start-up with a one-line reason."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        first = str(exc.orig or exc).strip().splitlines()
        reason = first[0] if first else type(exc).__name__
        raise ConfigError(
            f"cannot connect to the catalog database at "
            f"{engine.url.render_as_string(hide_password=True)}: {reason} "
            "(check database.url / SURVEIL_DATABASE__URL, that the server is running "
            "and reachable, and the user, password and database name)"
        ) from exc
