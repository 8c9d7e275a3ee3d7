"""Read a catalog straight through SQL: what tests check the product wrote.

Tests look at rows the ports do not expose (track ids per frame, quality flags), so they
query the tables themselves, through a short-lived engine that never outlives the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import create_engine, text


def catalog_rows(
    url: str, sql: str, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Every row of one query against the catalog at `url`, as plain tuples."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), dict(params or {}))]
    finally:
        engine.dispose()
