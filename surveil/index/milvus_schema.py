"""The Milvus collection layout and filter expressions behind `MilvusIndex`.

One collection per embedding space. The primary key is the track id (the id FAISS
stores today: one pooled vector per track); the scalar fields carry what the search
filters by, so Milvus applies camera, label and time filters before its top-k cut:

- `day`: the UTC day of the track's first appearance, as days since 1970-01-01 (the
  FAISS shard day: per-day ids/counts and retention's whole-day drops keep meaning);
- `camera_id`, `label` (the track's label group), `ts_first`/`ts_last` (epoch ms);
- `written_ms`: when the row was written, so `saved_at` can tell reconcile which
  tracks changed in the catalog after their vector reached Milvus.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, date, datetime
from typing import Any

from pymilvus import DataType, MilvusClient

from surveil.config import MilvusSettings

ID = "id"
VECTOR = "vector"
DAY = "day"
CAMERA = "camera_id"
LABEL = "label"
TS_FIRST = "ts_first"
TS_LAST = "ts_last"
WRITTEN = "written_ms"

#: Longest camera id / label group kept (VARCHAR needs a bound; ids are short names).
MAX_TEXT = 512
#: Milvus refuses a search asking for more hits than this.
MAX_TOPK = 16_384
#: Ids per `id in [...]` expression (expression size stays small).
ID_CHUNK = 2_000

_EPOCH = date(1970, 1, 1).toordinal()


def day_number(day: date) -> int:
    """Days since 1970-01-01: what the `day` field stores."""
    return day.toordinal() - _EPOCH


def day_of(number: int) -> date:
    """The date a stored `day` number stands for."""
    return date.fromordinal(int(number) + _EPOCH)


def epoch_ms(ts: datetime) -> int:
    """A UTC timestamp as epoch milliseconds (naive values are taken as UTC)."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds back to a UTC timestamp."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def schema(client: MilvusClient, dim: int) -> Any:
    """The collection schema for vectors of `dim` floats."""
    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field(ID, DataType.INT64, is_primary=True)
    s.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    s.add_field(DAY, DataType.INT32)
    s.add_field(CAMERA, DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field(LABEL, DataType.VARCHAR, max_length=MAX_TEXT)
    s.add_field(TS_FIRST, DataType.INT64)
    s.add_field(TS_LAST, DataType.INT64)
    s.add_field(WRITTEN, DataType.INT64)
    return s


def index_params(client: MilvusClient, settings: MilvusSettings) -> Any:
    """The vector index: inner product (vectors are L2-normalised, so IP is cosine)."""
    params: dict[str, int] = {}
    if settings.index_type == "HNSW":
        params = {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction}
    elif settings.index_type in ("IVF_FLAT", "IVF_SQ8"):
        params = {"nlist": settings.ivf_nlist}
    p = client.prepare_index_params()
    p.add_index(field_name=VECTOR, index_type=settings.index_type, metric_type="IP", params=params)
    return p


#: A filtered HNSW search explores FILTERED_EF_FACTOR x hnsw_ef: the graph walk skips
#: rows the filter excludes, so a narrow filter starves it. One camera of 20 at 100k
#: re-ID-like vectors on Milvus Lite: recall@100 0.747 at ef 256, 0.982 at ef 1024
#: (docs/performance.md, "Milvus backend").
FILTERED_EF_FACTOR = 4
#: Milvus's largest ef.
MAX_EF = 32_768


def search_params(settings: MilvusSettings, k: int, *, filtered: bool = False) -> dict[str, Any]:
    """Per-search knobs: HNSW's ef never under k (Milvus requires it), IVF's nprobe."""
    if settings.index_type == "HNSW":
        ef = settings.hnsw_ef * (FILTERED_EF_FACTOR if filtered else 1)
        return {"metric_type": "IP", "params": {"ef": min(max(ef, k), MAX_EF)}}
    if settings.index_type in ("IVF_FLAT", "IVF_SQ8"):
        return {"metric_type": "IP", "params": {"nprobe": settings.ivf_nprobe}}
    return {"metric_type": "IP", "params": {}}


def _text_list(values: Collection[str]) -> str:
    # JSON string literals are valid Milvus string literals (double quotes, escapes).
    return "[" + ", ".join(json.dumps(v) for v in sorted(values)) + "]"


def filter_expr(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    cameras: Collection[str] | None = None,
    labels: Collection[str] | None = None,
    days: Collection[date] | None = None,
) -> str:
    """A Milvus boolean expression; "" when nothing restricts.

    A time window keeps every track that overlaps it (a member inside the window may
    lie anywhere in the track's span); the catalog then checks the members exactly.
    """
    parts: list[str] = []
    if since is not None:
        parts.append(f"{TS_LAST} >= {epoch_ms(since)}")
    if until is not None:
        parts.append(f"{TS_FIRST} <= {epoch_ms(until)}")
    if cameras:
        parts.append(f"{CAMERA} in {_text_list(cameras)}")
    if labels:
        parts.append(f"{LABEL} in {_text_list(labels)}")
    if days is not None:
        parts.append(f"{DAY} in [{', '.join(str(day_number(d)) for d in sorted(days))}]")
    return " and ".join(parts)


def ids_expr(ids: Collection[int], extra: str = "") -> str:
    """`id in [...]`, and `extra` when given."""
    expr = f"{ID} in [{', '.join(str(int(i)) for i in ids)}]"
    return f"{expr} and {extra}" if extra else expr
