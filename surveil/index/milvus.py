"""The vector index in Milvus: shared by every surveil process, filters inside the search.

Only `pymilvus.MilvusClient` is used, so one code path talks to Milvus Lite's server,
Milvus Standalone and a cluster: only `index.milvus.uri` changes. Each space lives in
a physical collection `{prefix}{space}__{stamp}` reached through the alias
`{prefix}{space}`; `rebuild_space` fills a new collection and moves the alias, so
searches never see a half-built index (collection layout: `milvus_schema`).

Writes are upserts that Milvus makes durable itself (its WAL): `save` only seals the
growing segments now and then (index.milvus.flush_seconds) so they get their vector
index, and `refresh` has nothing to do: a `surveil serve` replica sees an ingest
worker's vectors at once (consistency level Strong) or within the staleness bound.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from functools import partial
from typing import Any

import numpy as np
import structlog

from surveil.config import MilvusSettings
from surveil.domain import SPACES, ConfigError, Space, Vectors, as_vectors
from surveil.index import milvus_schema as ms
from surveil.index.above import above_by_rounds
from surveil.index.milvus_client import MilvusCalls, shown_uri
from surveil.ports import Ids, IndexHit, VectorBatch, VectorMeta

log = structlog.get_logger(__name__)


#: Rows per upsert call: keeps each gRPC message well under Milvus's 64 MiB limit.
UPSERT_ROWS = 2_000
#: counts_by_day reuses the per-day counts saved_at just scanned (reconcile asks for
#: both, one after the other) when this process wrote nothing since and they are this
#: fresh: each is a pass over every row, Milvus having no GROUP BY.
SCAN_REUSE_SECONDS = 2.0


class MilvusIndex:
    """`VectorIndex` over a Milvus server; one aliased collection per embedding space."""

    def __init__(self, settings: MilvusSettings) -> None:
        self._settings = settings
        self.uri = shown_uri(settings.uri)
        self._lock = threading.Lock()
        self._dims: dict[Space, int] = {}  # spaces whose collection is known to exist
        self._flushed_at = time.monotonic()
        self._writes = 0  # bumped by every write: a stale day scan is never reused
        self._day_scan: dict[Space, tuple[int, float, dict[date, int]]] = {}
        self._m = MilvusCalls(settings)
        self._client = self._m.client

    # ---- collections ------------------------------------------------------------------

    def collection(self, space: Space) -> str:
        """The name searches use: an alias of the space's current physical collection."""
        return f"{self._settings.collection_prefix}{space}"

    def collections(self) -> dict[Space, str]:
        """Physical collection behind each existing space alias (for `index status`)."""
        out: dict[Space, str] = {}
        for space in SPACES:
            name = self.collection(space)
            if self._m.call("list collections", partial(self._client.has_collection, name)):
                desc = self._m.call("describe", partial(self._client.describe_collection, name))
                out[space] = str(desc.get("collection_name", name))
        return out

    def describe(self) -> dict[str, Any]:
        """What `surveil index status` shows: backend, URI (no credentials), collections."""
        return {
            "backend": "milvus",
            "uri": self.uri,
            "index_type": self._settings.index_type,
            "collections": {
                space: {"alias": self.collection(space), "collection": name}
                for space, name in self.collections().items()
            },
        }

    def _exists(self, space: Space) -> bool:
        if space in self._dims:
            return True
        name = self.collection(space)
        if not self._m.call("check a collection", lambda: self._client.has_collection(name)):
            return False
        desc = self._m.call("describe a collection", lambda: self._client.describe_collection(name))
        dim = next(int(f["params"]["dim"]) for f in desc["fields"] if f["name"] == ms.VECTOR)
        self._m.call("load a collection", lambda: self._client.load_collection(name))
        self._dims[space] = dim
        return True

    def _create_physical(self, space: Space, dim: int) -> str:
        """A new, empty, indexed and loaded collection for `space`; returns its name."""
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + uuid.uuid4().hex[:6]
        name = f"{self.collection(space)}__{stamp}"
        c, s = self._client, self._settings
        self._m.call(
            "create a collection",
            lambda: c.create_collection(
                name,
                schema=ms.schema(c, dim),
                index_params=ms.index_params(c, s),
                consistency_level=s.consistency_level,
            ),
        )
        log.info("milvus.collection_created", collection=name, dim=dim, uri=self.uri)
        return name

    def _ensure(self, space: Space, dim: int) -> None:
        """Create the space's collection and alias on first use; refuse another dimension."""
        with self._lock:
            if not self._exists(space):
                name = self._create_physical(space, dim)
                alias = self.collection(space)
                self._m.call("create an alias", lambda: self._client.create_alias(name, alias))
                self._dims[space] = dim
        if self._dims[space] != dim:
            raise ConfigError(
                f"Milvus collection {self.collection(space)} holds {self._dims[space]}-d "
                f"vectors, got {dim}-d: the {space} embedder changed; run "
                "`surveil index rebuild`"
            )

    # ---- writes -----------------------------------------------------------------------

    @property
    def filters_inside(self) -> bool:
        """Camera, label and time filters run inside Milvus's search, before the cut."""
        return True

    def add(
        self,
        space: Space,
        ids: Ids,
        vectors: Vectors,
        days: Sequence[date],
        *,
        meta: Sequence[VectorMeta] | None = None,
    ) -> None:
        """Upsert each track's vector with its filter fields (a growing track's vector moves)."""
        vectors = as_vectors(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if vectors.ndim != 2 or len(vectors) != len(ids) or len(ids) != len(days):
            raise ValueError(
                f"add needs matching ids/vectors/days, got {len(ids)} ids, "
                f"vectors of shape {vectors.shape}, {len(days)} days"
            )
        if meta is None or len(meta) != len(ids):
            raise ValueError(
                "the Milvus index needs each id's camera, label and time span (meta) to "
                "filter inside its search; pass meta= with one VectorMeta per id"
            )
        if len(ids) == 0:
            return
        self._ensure(space, int(vectors.shape[1]))
        self._upsert(self.collection(space), ids, vectors, days, meta)

    def _upsert(
        self,
        name: str,
        ids: Ids,
        vectors: Vectors,
        days: Sequence[date],
        meta: Sequence[VectorMeta],
    ) -> None:
        written = int(time.time() * 1000)
        self._writes += 1
        for start in range(0, len(ids), UPSERT_ROWS):
            stop = start + UPSERT_ROWS
            rows = [
                {
                    ms.ID: int(i),
                    ms.VECTOR: v,
                    ms.DAY: ms.day_number(d),
                    ms.CAMERA: m.camera_id,
                    ms.LABEL: m.label,
                    ms.TS_FIRST: ms.epoch_ms(m.first_ts),
                    ms.TS_LAST: ms.epoch_ms(m.last_ts),
                    ms.WRITTEN: written,
                }
                for i, v, d, m in zip(
                    ids[start:stop],
                    vectors[start:stop],
                    days[start:stop],
                    meta[start:stop],
                    strict=True,
                )
            ]
            self._m.call("upsert vectors", partial(self._client.upsert, name, rows))

    def remove(self, space: Space, ids: Ids, *, days: Collection[date] | None = None) -> int:
        """Delete ids (only within `days` when given); returns how many were present."""
        wanted = np.unique(np.asarray(ids, dtype=np.int64))
        if len(wanted) == 0 or (days is not None and not days) or not self._exists(space):
            return 0
        name, extra = self.collection(space), ms.filter_expr(days=days)
        removed = 0
        for start in range(0, len(wanted), ms.ID_CHUNK):
            expr = ms.ids_expr(wanted[start : start + ms.ID_CHUNK].tolist(), extra)
            present = [int(r[ms.ID]) for r in self._m.query(name, expr, [ms.ID])]
            if present:
                self._writes += 1
                self._m.call("delete vectors", partial(self._client.delete, name, ids=present))
                removed += len(present)
        return removed

    def drop_shard(self, space: Space, day: date) -> bool:
        """Delete a whole day by expression (retention); True if it held any vector."""
        if not self._exists(space):
            return False
        name, expr = self.collection(space), ms.filter_expr(days=[day])
        if self._m.count(name, expr) == 0:
            return False
        self._writes += 1
        self._m.call("delete a day", lambda: self._client.delete(name, filter=expr))
        return True

    def drop_space(self, space: Space) -> bool:
        """Drop a space's alias and collection (a benchmark's or test's cleanup)."""
        with self._lock:
            old = self.collections().get(space)
            if old is None:
                return False
            alias, c = self.collection(space), self._client
            if old != alias:
                self._m.call("drop an alias", lambda: c.drop_alias(alias))
            self._m.call("drop a collection", lambda: c.drop_collection(old))
            self._dims.pop(space, None)
            self._writes += 1
            return True

    def save(self) -> None:
        """Seal what was written, at most every `flush_seconds` (0: never).

        Milvus persists every acknowledged write itself (its WAL); sealing only lets the
        new rows be searched through the vector index instead of a scan of the growing
        segment. Frequent flushes make small segments, hence the interval.
        """
        every = self._settings.flush_seconds
        if every > 0 and time.monotonic() - self._flushed_at >= every:
            self.flush()

    def flush(self) -> None:
        """Seal every space's growing segments now."""
        for space in list(self._dims):
            name = self.collection(space)
            self._m.call("flush", partial(self._client.flush, name))
        self._flushed_at = time.monotonic()

    def refresh(self) -> bool:
        """Nothing to re-read: every process queries the same server. Always False."""
        return False

    def close(self) -> None:
        """Release the client's connection."""
        self._m.close()

    # ---- reads ------------------------------------------------------------------------

    def search(
        self,
        space: Space,
        vector: Vectors,
        k: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        cameras: Collection[str] | None = None,
        labels: Collection[str] | None = None,
    ) -> list[IndexHit]:
        """The k best tracks by inner product among those the filters let through."""
        if k <= 0 or not self._exists(space):
            return []
        k = min(k, ms.MAX_TOPK)
        query = as_vectors(vector).reshape(-1)
        expr = ms.filter_expr(since=since, until=until, cameras=cameras, labels=labels)
        name = self.collection(space)
        found = self._m.call(
            "search",
            lambda: self._client.search(
                name,
                data=[query.tolist()],
                limit=k,
                filter=expr,
                search_params=ms.search_params(self._settings, k, filtered=bool(expr)),
                output_fields=[],
            ),
        )
        return [IndexHit(int(h["id"]), float(h["distance"])) for h in found[0]]

    def search_above(
        self,
        space: Space,
        vector: Vectors,
        min_score: float,
        limit: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        cameras: Collection[str] | None = None,
        labels: Collection[str] | None = None,
    ) -> list[IndexHit]:
        """Every track scoring >= min_score among those the filters let through (the best
        `limit`, at most Milvus's top-k cap), by k-nearest rounds: the filters already
        apply inside each search, so a deep round is rare."""

        def search(k: int) -> list[IndexHit]:
            return self.search(
                space, vector, k, since=since, until=until, cameras=cameras, labels=labels
            )

        return above_by_rounds(search, min_score, min(limit, ms.MAX_TOPK))

    def ids_by_day(self, space: Space, *, days: Collection[date] | None = None) -> dict[date, Ids]:
        """Ids per day (only `days` when given), sorted."""
        if (days is not None and not days) or not self._exists(space):
            return {}
        by_day: dict[int, list[int]] = defaultdict(list)
        expr = ms.filter_expr(days=days)
        for row in self._m.scan(self.collection(space), expr, [ms.ID, ms.DAY]):
            by_day[int(row[ms.DAY])].append(int(row[ms.ID]))
        return {ms.day_of(d): np.sort(np.asarray(v, np.int64)) for d, v in sorted(by_day.items())}

    def counts_by_day(self, space: Space) -> dict[date, int]:
        """Vectors per non-empty day (one pass over the day field, or saved_at's pass)."""
        if not self._exists(space):
            return {}
        reused = self._day_scan.pop(space, None)
        if reused is not None:
            writes, at, counts = reused
            if writes == self._writes and time.monotonic() - at < SCAN_REUSE_SECONDS:
                return counts
        per_day: dict[int, int] = defaultdict(int)
        for row in self._m.scan(self.collection(space), "", [ms.DAY]):
            per_day[int(row[ms.DAY])] += 1
        return {ms.day_of(d): n for d, n in sorted(per_day.items())}

    def size(self, space: Space) -> int:
        """Vectors held for a space."""
        return self._m.count(self.collection(space), "") if self._exists(space) else 0

    def saved_at(self, space: Space) -> dict[date, datetime]:
        """Per day, when its newest vector was written: reconcile re-indexes tracks that
        changed in the catalog after that (a crash between a commit and its upsert)."""
        if not self._exists(space):
            return {}
        latest: dict[int, int] = {}
        per_day: dict[int, int] = defaultdict(int)
        for row in self._m.scan(self.collection(space), "", [ms.DAY, ms.WRITTEN]):
            d, w = int(row[ms.DAY]), int(row[ms.WRITTEN])
            latest[d] = max(latest.get(d, w), w)
            per_day[d] += 1
        counts = {ms.day_of(d): n for d, n in sorted(per_day.items())}
        self._day_scan[space] = (self._writes, time.monotonic(), counts)
        return {ms.day_of(d): ms.from_ms(w) for d, w in sorted(latest.items())}

    # ---- rebuild ----------------------------------------------------------------------

    def rebuild_space(self, space: Space, batches: Iterable[VectorBatch]) -> int:
        """Fill a new collection from `batches`, move the alias to it, drop the old one.

        Searches use the old collection until the alias moves. Writes made meanwhile
        land in the old one and are lost with it: `reconcile` (run at every start, or
        `surveil index status --full`) puts them back from the catalog.
        """
        staged: str | None = None
        dim = 0
        count = 0
        for batch in batches:
            if len(batch.ids) == 0:
                continue
            if batch.meta is None:
                raise ValueError("rebuild needs the catalog's per-track meta (VectorBatch.meta)")
            if staged is None:
                dim = int(batch.vectors.shape[1])
                staged = self._create_physical(space, dim)
            self._upsert(staged, batch.ids, batch.vectors, batch.days, batch.meta)
            count += len(batch.ids)
        self._swap(space, staged, dim)
        log.info("milvus.rebuilt", space=space, vectors=count, collection=staged, uri=self.uri)
        return count

    def _swap(self, space: Space, staged: str | None, dim: int) -> None:
        """Point the space's alias at `staged` (None: the space is now empty)."""
        alias, c = self.collection(space), self._client
        with self._lock:
            old = self.collections().get(space)
            if staged is not None and old is not None and old != alias:
                self._m.call("move an alias", lambda: c.alter_alias(staged, alias))
            else:
                if old is not None and old != alias:
                    self._m.call("drop an alias", lambda: c.drop_alias(alias))
                if old is not None:
                    self._m.call("drop a collection", lambda: c.drop_collection(old))
                    old = None
                if staged is not None:
                    self._m.call("create an alias", lambda: c.create_alias(staged, alias))
            if old is not None:
                self._m.call("drop the old collection", lambda: c.drop_collection(old))
            self._dims.pop(space, None)
            self._writes += 1
            if staged is not None:
                self._dims[space] = dim
