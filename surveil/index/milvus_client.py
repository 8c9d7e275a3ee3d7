"""One connection to Milvus: calls whose failures name the URI (never the token), and the
paged reads `MilvusIndex` builds on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pymilvus import MilvusClient, MilvusException

from surveil.config import MilvusSettings
from surveil.domain import ConfigError

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
            grpc_options={"grpc.keepalive_time_ms": int(s.keepalive_seconds * 1000)},
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

    def close(self) -> None:
        """Release the connection."""
        self.call("close", self.client.close)
