"""What `surveil index status` says about shards: which are exact, which compressed, and
the recall each trained shard measured on itself (from the manifest; nothing is loaded)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from surveil.domain import Space
from surveil.index.sharded import ShardedFaissIndex
from surveil.ports import VectorIndex


def backend_status(index: VectorIndex) -> dict[str, Any]:
    """Which backend holds the vectors and where (a Milvus URI never carries its token)."""
    if isinstance(index, ShardedFaissIndex):
        return {"backend": "faiss", "root": str(index.root)}
    describe = getattr(index, "describe", None)
    if callable(describe):
        described: dict[str, Any] = describe()
        return described
    return {"backend": type(index).__name__}


def backend_line(backend: dict[str, Any]) -> str:
    """One line for people: the backend and where it lives."""
    if backend["backend"] == "faiss":
        return f"index: faiss shards under {backend['root']}"
    if backend["backend"] == "milvus":
        names = ", ".join(c["collection"] for c in backend["collections"].values())
        return (
            f"index: milvus at {backend['uri']} ({backend['index_type']}); "
            f"collections: {names or 'none yet'}"
        )
    return f"index: {backend['backend']}"


def shard_status(index: VectorIndex, space: Space) -> list[dict[str, Any]]:
    """One entry per shard day: vectors, type, and for trained shards the recall record."""
    if not isinstance(index, ShardedFaissIndex):
        return []
    counts = index.counts_by_day(space)
    out: list[dict[str, Any]] = []
    for day, record in index.training(space).items():
        entry: dict[str, Any] = {"day": day.isoformat(), "vectors": counts.get(day, 0)}
        if record is None:
            entry["type"] = "exact"
        else:
            entry.update(
                type=record.kind,
                nprobe=record.nprobe,
                recall_target=record.target,
                match_recall=record.match_recall,
                matches=record.matches,
                floor=record.floor,
                recall_at_k=record.recall,
                k=record.recall_k,
                trained_vectors=record.vectors,
                trained_at=datetime.fromtimestamp(record.trained_at, UTC).isoformat(),
            )
        out.append(entry)
    return out


def _span(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def shard_lines(space: Space, shards: Sequence[dict[str, Any]]) -> list[str]:
    """A line per space for people: how many shards of each type, and the recall range."""
    if not shards:
        return []
    trained = [s for s in shards if s["type"] != "exact"]
    exact = len(shards) - len(trained)
    noun = "shard" if len(shards) == 1 else "shards"
    line = f"  {space}: {len(shards)} {noun}, {exact} exact, {len(trained)} compressed"
    if trained:
        matches = [s["match_recall"] for s in trained if s["match_recall"] is not None]
        line += (
            f" (nprobe {_span([s['nprobe'] for s in trained])}, "
            f"recall@{trained[0]['k']} {_span([s['recall_at_k'] for s in trained])}"
        )
        if matches:
            line += f", recall of true matches {_span(matches)}"
        line += f"; target {trained[0]['recall_target']:g})"
    return [line]
