"""Train a shard into its compressed type and measure, not assume, what it finds.

A shard's recall depends on the vectors it holds (re-ID embeddings are anisotropic: one
probe finds far less on real OSNet vectors than on isotropic synthetic ones), so every
trained shard calibrates itself: a sample of its own vectors is searched exactly and
through the codes at rising probe counts, and the smallest count that reaches
`recall_target` is kept. What must be found is what a search returns: with a score
floor (the space's min_score) the **true matches**, every vector scoring at or above it
(self excluded); without one, or where the sample holds too few matches to measure,
the exact top-`RECALL_K`. Both figures go to the manifest and `surveil index status`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np
import structlog

from surveil.domain import Vectors
from surveil.index.compressed import CALIBRATED_DEPTH, RECALL_K, CompressedShard, nlist_for
from surveil.ports import Ids

log = structlog.get_logger(__name__)

#: Queries drawn from a shard to measure its recall (200 gives about +-0.01 at 0.98).
RECALL_QUERIES = 200
#: Fewest true matches over all sample queries for match recall to decide the probe count.
MIN_MATCHES = 50
#: Probe counts tried, smallest first; the shard's nlist caps them.
PROBE_LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


@dataclass(frozen=True, slots=True)
class TrainingRecord:
    """What a trained shard is and what it was measured to find (kept in the manifest)."""

    kind: str
    nlist: int
    nprobe: int
    recall: float
    recall_k: int
    queries: int
    target: float
    vectors: int
    seconds: float
    trained_at: float
    #: Share of the sample's true matches (exact score >= floor) found; None: no floor.
    match_recall: float | None = None
    matches: int = 0
    floor: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the manifest."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainingRecord:
        """Read back a manifest record (unknown keys ignored, so newer manifests still load)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass(frozen=True, slots=True)
class _Truth:
    """Exact answers for the calibration queries: top-k ids, and ids at or above the floor."""

    top: list[set[int]]
    matches: list[set[int]]

    @property
    def match_count(self) -> int:
        return sum(len(m) for m in self.matches)


def _exact_truth(vectors: Vectors, ids: Ids, picks: Ids, k: int, floor: float | None) -> _Truth:
    """Each query's exact top-k and true matches over the shard, its own id left out."""
    flat = faiss.IndexFlatIP(int(vectors.shape[1]))
    flat.add(vectors)
    queries = np.ascontiguousarray(vectors[picks])
    deep = min(len(ids), max(k + 1, CALIBRATED_DEPTH if floor is not None else 0))
    scores, rows = flat.search(queries, deep)
    top, matches = [], []
    for own, row, score in zip(ids[picks].tolist(), rows, scores, strict=True):
        ranked = [int(ids[r]) for r in row if r >= 0 and int(ids[r]) != own]
        top.append(set(ranked[:k]))
        above = [
            int(ids[r])
            for r, sc in zip(row, score, strict=True)
            if r >= 0 and floor is not None and sc >= floor
        ]
        matches.append(set(above) - {own})
    return _Truth(top=top, matches=matches)


def measure_recall(
    shard: CompressedShard, truth: _Truth, query_ids: Ids, queries: Vectors, k: int, nprobe: int
) -> tuple[float, float | None]:
    """(recall@k, recall of true matches or None) the shard reaches at `nprobe`."""
    found = wanted = found_m = wanted_m = 0
    for qid, query, top, matches in zip(
        query_ids.tolist(), queries, truth.top, truth.matches, strict=True
    ):
        _, ids = shard.search(query, max(k, len(matches)) + 1, nprobe=nprobe)
        got = set(ids.tolist()) - {qid}
        found += len(top & got)
        wanted += len(top)
        found_m += len(matches & got)
        wanted_m += len(matches)
    match = found_m / wanted_m if wanted_m else None
    return (found / wanted if wanted else 1.0), match


def train_shard(
    ids: Ids, vectors: Vectors, *, recall_target: float, floor: float | None = None, seed: int = 0
) -> tuple[CompressedShard, TrainingRecord]:
    """Build the compressed shard for these vectors and pick its probe count by measurement."""
    started = time.perf_counter()
    nlist = nlist_for(len(ids))
    shard = CompressedShard.train(ids, vectors, nlist=nlist, seed=seed)
    rng = np.random.default_rng(seed + 1)
    picks = np.sort(rng.choice(len(ids), min(RECALL_QUERIES, len(ids)), replace=False))
    queries = np.ascontiguousarray(vectors[picks])
    k = min(RECALL_K, len(ids) - 1)
    truth = _exact_truth(vectors, ids, picks, k, floor)
    by_matches = floor is not None and truth.match_count >= MIN_MATCHES

    def measured(probes: int) -> tuple[float, float | None, bool]:
        recall, match = measure_recall(shard, truth, ids[picks], queries, k, probes)
        reached = match if by_matches and match is not None else recall
        return recall, match, reached >= recall_target

    # Recall only grows with the probe count: a binary search over the ladder needs about
    # five measurements instead of one per rung.
    ladder = [p for p in PROBE_LADDER if p < nlist] + [nlist]
    low, high = 0, len(ladder) - 1
    best = (ladder[high], *measured(ladder[high])[:2])
    while low < high:
        mid = (low + high) // 2
        recall, match, ok = measured(ladder[mid])
        if ok:
            high, best = mid, (ladder[mid], recall, match)
        else:
            low = mid + 1
    probes, recall, match = best
    shard.nprobe = probes
    record = TrainingRecord(
        kind=f"IVF{nlist},SQ8",
        nlist=nlist,
        nprobe=probes,
        recall=round(recall, 4),
        recall_k=k,
        queries=len(picks),
        match_recall=None if match is None else round(match, 4),
        matches=truth.match_count,
        floor=floor,
        target=recall_target,
        vectors=len(ids),
        seconds=round(time.perf_counter() - started, 2),
        trained_at=time.time(),
    )
    log.info("index.shard_trained", **record.as_dict())
    return shard, record


Job = Callable[[], None]


class BackgroundTrainer:
    """One daemon thread that runs training jobs in order; never blocks the caller.

    One thread on purpose: training is CPU-bound and FAISS parallelises it internally,
    so two at once would only fight over the cores ingest and search also need.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[str, Job]] = queue.Queue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, key: str, job: Job) -> bool:
        """Queue a job unless one with the same key is queued or running."""
        with self._lock:  # queued under the lock: _run cannot exit between check and put
            if key in self._pending:
                return False
            self._pending.add(key)
            self._jobs.put((key, job))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="index-trainer", daemon=True)
                self._thread.start()
        return True

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return len(self._pending)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued job is done (True) or the timeout passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _run(self) -> None:
        while True:
            try:
                key, job = self._jobs.get(timeout=5.0)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            try:
                job()
            except Exception as exc:  # a failed training leaves the exact shard serving
                log.error("index.training_failed", shard=key, error=str(exc))
            finally:
                with self._lock:
                    self._pending.discard(key)
