"""The one place FAISS indexes are made, tuned, shrunk and (maybe) moved to a GPU.

Every index is inner-product (vectors are L2-normalised, so scores are cosine) and
wrapped in `IndexIDMap2`, so FAISS ids are appearance ids and `id_map` can be listed.

Supported factory strings (``SURVEIL_INDEX__FACTORY``):

- ``auto`` (the default): a shard is exact (Flat) while small or still filling, then
  trained in the background into IVF lists of 8-bit codes with exact re-rank, its probe
  count chosen by measured recall (`index.recall_target`; see index/training.py).
- ``Flat``: exact search forever; the recall reference.
- ``IVF{nlist},Flat``: approximate; a shard starts as ``Flat`` and is trained into an
  IVF once it holds enough vectors to train on (see `maybe_upgrade`), so small shards
  never carry a badly trained quantizer.
- ``HNSW{M}`` / ``HNSW{M},Flat``: approximate graph search.

Only Flat shards remove in place; IVF and HNSW shards are re-filled from their own
stored vectors on removal (see `remove_ids`), which is correct but costs one add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import faiss
import numpy as np
import structlog

from surveil.domain import ConfigError, Vectors
from surveil.ports import Ids

log = structlog.get_logger(__name__)
# faiss ships partial, dated stubs (no SearchParametersHNSW, no kwargs constructors);
# the untyped alias is used only where they disagree with the library.
_faiss: Any = faiss

FACTORY_ENV = "SURVEIL_INDEX__FACTORY"
#: FAISS wants about 39 training points per IVF list; fewer gives warnings and bad lists.
TRAIN_POINTS_PER_LIST = 39
#: Default IVF lists probed per query: a recall/latency middle ground (see benchmarks).
DEFAULT_NPROBE_FRACTION = 16
MIN_NPROBE = 8
#: The largest k FAISS's GPU indexes accept (a compile-time limit of its GPU k-selection).
GPU_MAX_K = 2048
#: HNSW beam width at query time; raised to k when k is larger so k results can come back.
DEFAULT_EF_SEARCH = 128

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("auto", re.compile(r"^auto$")),
    ("flat", re.compile(r"^Flat$")),
    ("ivf", re.compile(r"^IVF(?P<n>[1-9][0-9]*),Flat$")),
    ("hnsw", re.compile(r"^HNSW(?P<n>[1-9][0-9]*)(,Flat)?$")),
)


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A validated factory string: which kind of index, and its one size parameter."""

    kind: Literal["auto", "flat", "ivf", "hnsw"]
    param: int
    text: str

    @property
    def train_size(self) -> int:
        """Vectors a shard must hold before it is trained into its final type."""
        return self.param * TRAIN_POINTS_PER_LIST if self.kind == "ivf" else 0


@cache
def parse_factory(factory: str) -> IndexSpec:
    """Validate a factory string once, so a typo fails at start-up, not at the first add."""
    text = factory.strip()
    for kind, pattern in _PATTERNS:
        match = pattern.match(text)
        if match:
            param = int(match.group("n")) if "n" in pattern.groupindex else 0
            return IndexSpec(kind=kind, param=param, text=text)  # type: ignore[arg-type]
    raise ConfigError(
        f"unsupported vector index factory {factory!r} (set {FACTORY_ENV} / index.factory to "
        "'auto', 'Flat', 'IVF<nlist>,Flat' such as 'IVF1024,Flat', or 'HNSW<M>' such as 'HNSW32')"
    )


def _build(description: str, dim: int) -> Any:
    return faiss.index_factory(dim, f"IDMap2,{description}", faiss.METRIC_INNER_PRODUCT)


def make_index(factory: str, dim: int) -> Any:
    """A fresh, empty shard index for `factory` (IVF starts as Flat until trainable)."""
    if dim <= 0:
        raise ValueError(f"index dimension must be positive, got {dim}")
    spec = parse_factory(factory)
    if spec.kind == "hnsw":
        return _build(f"HNSW{spec.param},Flat", dim)
    # IVF shards begin exact: an untrained IVF cannot hold vectors, and training on a
    # handful of vectors gives lists worse than a flat scan of the same handful.
    return _build("Flat", dim)


def is_final(index: Any, factory: str) -> bool:
    """Whether a shard already has the type the factory asks for (IVF shards start Flat)."""
    spec = parse_factory(factory)
    inner = faiss.downcast_index(index.index)
    if spec.kind == "ivf":
        return isinstance(inner, faiss.IndexIVF)
    if spec.kind == "hnsw":
        return isinstance(inner, faiss.IndexHNSW)
    return isinstance(inner, faiss.IndexFlat)  # auto: the trained type is not an IDMap2


def stored_vectors(index: Any) -> tuple[Ids, Vectors]:
    """All (ids, vectors) a shard holds, read back from FAISS itself (no catalog needed)."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexIVF):
        inner.make_direct_map()
    vectors = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else None
    if vectors is None:
        vectors = np.zeros((0, index.d), np.float32)
    return ids, np.ascontiguousarray(vectors, dtype=np.float32)


def maybe_upgrade(index: Any, factory: str) -> Any:
    """Train a Flat-started IVF shard once it holds enough vectors; else return it as is."""
    spec = parse_factory(factory)
    if spec.kind != "ivf" or index.ntotal < spec.train_size or is_final(index, factory):
        return index
    ids, vectors = stored_vectors(index)
    upgraded = _build(spec.text, index.d)
    upgraded.train(vectors)
    upgraded.add_with_ids(vectors, ids)
    log.info("index.shard_trained", factory=spec.text, vectors=int(index.ntotal))
    return upgraded


def remove_ids(index: Any, ids: Ids) -> int:
    """Remove `ids` from a shard in place; returns how many went."""
    if index.ntotal == 0 or len(ids) == 0:
        return 0
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if isinstance(faiss.downcast_index(index.index), faiss.IndexFlat):
        return int(index.remove_ids(ids))
    # IDMap2 cannot remove from IVF (its lists keep stale positions, so ids would shift
    # onto the wrong vectors) and FAISS has no HNSW delete: re-add the vectors that stay.
    # reset() keeps the IVF training, so this costs one add, not a retrain.
    held, vectors = stored_vectors(index)
    keep = ~np.isin(held, ids)
    removed = int((~keep).sum())
    if removed:
        index.reset()
        if keep.any():
            index.add_with_ids(np.ascontiguousarray(vectors[keep]), held[keep])
        log.info("index.shard_rebuilt_for_removal", removed=removed, kept=int(keep.sum()))
    return removed


def search_params(index: Any, k: int) -> Any | None:
    """Per-query knobs for approximate shards (IVF lists probed, HNSW beam width)."""
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexIVF):
        nprobe = max(MIN_NPROBE, inner.nlist // DEFAULT_NPROBE_FRACTION)
        return _faiss.SearchParametersIVF(nprobe=min(nprobe, inner.nlist))
    if isinstance(inner, faiss.IndexHNSW):
        return _faiss.SearchParametersHNSW(efSearch=max(DEFAULT_EF_SEARCH, k))
    return None


@cache
def gpu_count() -> int:
    """GPUs FAISS can use: 0 with faiss-cpu or without CUDA. The one device decision."""
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except RuntimeError:  # a GPU build on a machine without a working driver
        return 0


@cache
def _gpu_resources() -> Any:
    return faiss.StandardGpuResources()


def for_search(index: Any) -> Any:
    """The index to run searches on: a GPU copy when a GPU FAISS and CUDA exist, else itself."""
    if gpu_count() == 0 or isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW):
        return index  # FAISS has no GPU HNSW; the CPU graph is already fast
    try:
        return faiss.index_cpu_to_gpu(_gpu_resources(), 0, index)
    except RuntimeError as exc:  # an index type the GPU cloner refuses: stay correct on CPU
        log.warning("index.gpu_copy_failed", error=str(exc))
        return index
