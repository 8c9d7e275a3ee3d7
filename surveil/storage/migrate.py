"""Schema migrations driven from code: `surveil db upgrade` and the start-up check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from surveil.domain import ConfigError
from surveil.storage.db import check_connection, make_engine

#: The repository's Alembic scripts (surveil/storage/migrate.py -> <repo>/migrations).
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config built in code; the URL travels as an attribute, never in a file."""
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise ConfigError(f"Alembic migrations not found at {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


def head_revision() -> str | None:
    """The newest revision the code ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision`; running it twice changes nothing."""
    engine = make_engine(url)
    try:
        check_connection(engine)
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_current(engine: Engine) -> None:
    """Refuse to start on a database whose schema is not the one this code expects."""
    check_connection(engine)
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        masked = engine.url.render_as_string(hide_password=True)
        raise ConfigError(
            f"database at {masked} is not migrated (at {current or 'nothing'}, need {head}): "
            "run `surveil db upgrade`"
        )
