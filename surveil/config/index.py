"""The vector index: FAISS shards on the local disk (embedded) or a Milvus server (shared).

The Milvus token is a secret: a SecretStr (shown as '**********' by `surveil config
show` and never logged), given by ``SURVEIL_INDEX__MILVUS__TOKEN`` or read from
`token_file` (a mounted Kubernetes/compose secret).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from surveil.config.base import Section
from surveil.domain import ConfigError

MilvusIndexType = Literal["HNSW", "IVF_FLAT", "IVF_SQ8", "FLAT"]
Consistency = Literal["Strong", "Bounded", "Session", "Eventually"]


class MilvusSettings(Section):
    uri: str = Field(
        "http://127.0.0.1:19530",
        title="Milvus URI",
        description=(
            "Milvus endpoint, http://HOST:PORT (Milvus Lite's server, Standalone or a "
            "cluster's proxy: only this changes)."
        ),
    )
    token: SecretStr | None = Field(
        None,
        title="Milvus token",
        description=(
            "'user:password' or an API key; prefer SURVEIL_INDEX__MILVUS__TOKEN or "
            "token_file to writing it here. Never logged or shown."
        ),
    )
    token_file: Path | None = Field(
        None,
        title="Milvus token file",
        description="File holding the token (a mounted secret); used when token is unset.",
    )
    db_name: str = Field(
        "",
        title="Database",
        description="Milvus database holding the collections; empty: Milvus's default.",
    )
    collection_prefix: str = Field(
        "surveil_",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        title="Collection prefix",
        description="Collections are named PREFIX + space (surveil_person, surveil_general).",
    )
    index_type: MilvusIndexType = Field(
        "HNSW",
        title="Index type",
        description=(
            "Milvus vector index: HNSW (graph; default), IVF_FLAT / IVF_SQ8 (inverted "
            "lists, SQ8 4x smaller), FLAT (exact scan)."
        ),
    )
    hnsw_m: int = Field(
        16, ge=4, le=64, title="HNSW M", description="Graph links per vector (memory vs recall)."
    )
    hnsw_ef_construction: int = Field(
        200,
        ge=8,
        le=1024,
        title="HNSW efConstruction",
        description="Candidate list while building the graph (build time vs recall).",
    )
    hnsw_ef: int = Field(
        256,
        ge=8,
        le=32768,
        title="HNSW ef",
        description=(
            "Candidate list at search time; raised to k when a search asks for more, and "
            "4x for a filtered search (a narrow filter starves the graph walk)."
        ),
    )
    ivf_nlist: int = Field(
        1024, ge=1, le=65536, title="IVF nlist", description="Inverted lists (IVF types)."
    )
    ivf_nprobe: int = Field(
        32, ge=1, le=65536, title="IVF nprobe", description="Lists probed per search (IVF types)."
    )
    consistency_level: Consistency = Field(
        "Strong",
        title="Consistency level",
        description=(
            "Strong: a search sees every write acknowledged before it (as one FAISS process "
            "does); Bounded trades a few seconds of staleness for lower latency."
        ),
    )
    flush_seconds: float = Field(
        60.0,
        ge=0.0,
        le=86_400.0,
        title="Flush interval",
        description=(
            "save() seals the growing segments at most this often, so they get their "
            "vector index (Milvus Lite searches unsealed rows by brute force); 0: leave "
            "sealing to Milvus."
        ),
    )
    timeout_seconds: float = Field(
        10.0, gt=0.0, le=600.0, title="Timeout", description="Per-call timeout against Milvus."
    )
    reconcile_minutes: float = Field(
        15.0,
        ge=0.0,
        le=10_080.0,
        title="Reconcile interval",
        description=(
            "Milvus is shared, so no process reconciles it at start (each replica and CLI "
            "call would read every row); the scheduler does, once across replicas, every "
            "this many minutes. `surveil index status` reconciles on demand. 0: never."
        ),
    )
    keepalive_seconds: float = Field(
        10.0,
        ge=1.0,
        le=3600.0,
        title="Keepalive interval",
        description=(
            "gRPC keepalive ping interval (pymilvus's 10 s suits Milvus Standalone and "
            "clusters). Milvus Lite's server accepts one ping per 300 s and drops clients "
            "that ping more ('Too many pings'): use 300 against it."
        ),
    )

    def resolved_token(self) -> str | None:
        """The token from the setting, else from token_file (ConfigError if unreadable)."""
        if self.token is not None:
            return self.token.get_secret_value() or None
        if self.token_file is None:
            return None
        try:
            return self.token_file.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(
                f"index.milvus.token_file {self.token_file} cannot be read "
                f"({exc.strerror}); mount the secret there or set SURVEIL_INDEX__MILVUS__TOKEN"
            ) from None


class IndexSettings(Section):
    backend: Literal["faiss", "milvus"] = Field(
        "faiss",
        title="Backend",
        description=(
            "faiss: shard files under the storage root (one machine); milvus: a Milvus "
            "server shared by every process (index.milvus)."
        ),
    )
    milvus: MilvusSettings = Field(
        default_factory=MilvusSettings,
        title="Milvus",
        description="Where the Milvus backend lives and how its collections are indexed.",
    )
    factory: str = Field(
        "auto",
        title="FAISS factory string",
        description=(
            "Index type per shard: 'auto' (exact while small, then compressed IVF lists "
            "tuned to recall_target), or an expert's fixed type: 'Flat' (always exact), "
            "'IVF<n>,Flat', 'HNSW<M>'."
        ),
    )
    shard_by: Literal["day", "none"] = Field(
        "day", title="Sharding", description="One index file per UTC day, or one in all."
    )
    recall_target: float = Field(
        0.98,
        gt=0.0,
        le=1.0,
        title="Recall target",
        description=(
            "Share of the true matches (stored vectors scoring at or above the space's "
            "min_score) a trained shard must find; each shard measures itself at training "
            "and probes just enough lists (factory 'auto')."
        ),
    )
    exact_below: int = Field(
        10_000,
        ge=100,
        title="Exact below",
        description="A shard with fewer vectors stays exact (a scan this small is fast).",
    )
    train_open_above: int = Field(
        100_000,
        ge=100,
        title="Train open shards above",
        description=(
            "Today's shard (still filling) is trained once it holds this many vectors; "
            "earlier days are trained as soon as they pass exact_below."
        ),
    )
    search_threads: int = Field(
        0,
        ge=0,
        le=64,
        title="Search threads",
        description=(
            "Threads that search shards side by side, one FAISS thread each; "
            "0: one per CPU core, at most 4."
        ),
    )
