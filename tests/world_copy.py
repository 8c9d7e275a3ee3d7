"""A writable copy of the API world's catalog and blobs, for tests that change stored vectors.

The API world is ingested once per session and shared read-only; a test that re-embeds
or deletes rows copies its catalog rows (any back-end to any back-end) and its blob
folder instead of ingesting the footage again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Table, insert, select, text

from surveil.container import Services
from surveil.storage.db import make_engine
from surveil.storage.migrate import upgrade
from surveil.storage.tables import metadata

#: What a search needs: footage rows and the model of each space (not keys, audit, rules).
TABLES = ("cameras", "sources", "keyframes", "tracks", "appearances", "space_models")
#: Tables whose integer ids come from a sequence (moved past the copied ids on PostgreSQL).
SERIAL = ("sources", "keyframes", "tracks", "appearances")


def copy_world(source: Services, url: str, root: Path) -> None:
    """Copy `source`'s footage rows into the empty catalog at `url` and its blobs to `root`."""
    upgrade(url)
    shutil.copytree(source.settings.storage.root, root, ignore=shutil.ignore_patterns("index"))
    target = make_engine(url)
    try:
        with source.engine.connect() as read, target.begin() as write:
            for name in TABLES:
                table: Table = metadata.tables[name]
                rows = [dict(r._mapping) for r in read.execute(select(table))]
                if rows:
                    write.execute(insert(table), rows)
                if write.dialect.name == "postgresql" and name in SERIAL:
                    write.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"(SELECT coalesce(max(id), 1) FROM {name}))"
                        )
                    )
    finally:
        target.dispose()
