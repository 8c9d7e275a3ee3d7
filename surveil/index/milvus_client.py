"""One connection to Milvus: calls whose failures name the URI (never the token), and the
paged reads `MilvusIndex` builds on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pymilvus import MilvusClient, MilvusException

from surveil.config import MilvusSettings
from surveil.domain import ConfigError
from surveil.index import milvus_schema as ms

T = TypeVar("T")

#: Rows per page when listing ids or days.
PAGE_ROWS = 10_000


def shown_uri(uri: str) -> str:
    """The URI without any user:password part, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class MilvusCalls:
    """A `MilvusClient` for one URI; every call goes through `call` for a clear error."""

    def __init__(self, settings: MilvusSettings) -> None:
        self.uri = shown_uri(settings.uri)
        self._settings = settings
        self.client: MilvusClient = self.call("connect", self._connect)

    def _connect(self) -> MilvusClient:
        s = self._settings
        return MilvusClient(
            uri=s.uri,
            token=s.resolved_token() or "",
            db_name=s.db_name,
            timeout=s.timeout_seconds,
        )

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one Milvus call; a failure becomes a ConfigError naming the URI (no token)."""
        try:
            return fn()
        except MilvusException as exc:
            raise ConfigError(
                f"Milvus at {self.uri} failed to {what}: {exc.message} (code {exc.code}); "
                "check that Milvus is running and index.milvus.uri/token are right"
            ) from None
        except Exception as exc:  # grpc errors surface as several classes
            if type(exc).__module__.startswith("grpc"):
                raise ConfigError(
                    f"Milvus at {self.uri} is unreachable ({what}); check that Milvus "
                    "is running and index.milvus.uri is right"
                ) from None
            raise

    def count(self, name: str, expr: str) -> int:
        """Rows of collection `name` matching `expr` (all rows when "")."""
        rows = self.call(
            "count vectors",
            lambda: self.client.query(name, filter=expr, output_fields=["count(*)"]),
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def query(self, name: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """The rows matching a bounded expression (an id list), as dicts of `fields`."""
        rows = self.call(
            "query", lambda: self.client.query(name, filter=expr, output_fields=fields)
        )
        return list(rows)

    def scan(self, name: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row matching `expr` (all rows when ""), page by page (Milvus's iterator)."""
        pages = self.call(
            "list vectors",
            lambda: self.client.query_iterator(
                name, batch_size=PAGE_ROWS, filter=expr, output_fields=fields
            ),
        )
        try:
            while rows := self.call("list vectors", pages.next):
                yield from rows
        finally:
            pages.close()

    def day_counts(self, name: str) -> dict[int, int]:
        """Rows per stored day number, by bisecting the day range with count queries.

        Milvus has no GROUP BY, and a pass over every row took 261 s at 1M rows on
        Milvus Lite; a count is one query, and a month of days costs about a hundred.
        """
        out: dict[int, int] = {}
        stack = [(ms.MIN_DAY, ms.MAX_DAY, self.count(name, ""))]
        while stack:
            lo, hi, n = stack.pop()
            if n <= 0:
                continue
            if lo == hi:
                out[lo] = n
                continue
            mid = (lo + hi) // 2
            left = self.count(name, f"{ms.DAY} >= {lo} and {ms.DAY} <= {mid}")
            stack += [(lo, mid, left), (mid + 1, hi, n - left)]
        return dict(sorted(out.items()))

    def latest_written(self, name: str, day: int, now_ms: int) -> int:
        """The newest `written_ms` of a day (0 if none was written before `now_ms`).

        Searched back from now, doubling, then bisected to the millisecond: count
        queries only (about 2 x log2 of its age in ms, ~60 for a day-old write).
        """

        def any_since(ms_: int) -> bool:
            expr = f"{ms.DAY} == {day} and {ms.WRITTEN} >= {ms_}"
            return self.count(name, expr) > 0

        step = 1
        while not any_since(now_ms - step):
            if step > now_ms:
                return 0
            step *= 2
        lo, hi = now_ms - step, now_ms - step // 2  # newest lies in [lo, hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if any_since(mid) else (lo, mid)
        return lo

    def close(self) -> None:
        """Release the connection."""
        self.call("close", self.client.close)
