"""FAISS behind the VectorIndex port: one index per (space, UTC day), saved atomically.

Day shards make retention a file delete and let a time-window search open only the
days it overlaps. With the default factory ``auto`` a shard is exact while small or
filling and is trained in the background into compressed IVF lists with exact re-rank
(index/compressed.py), its probe count chosen by measured recall (index/training.py);
searches use the exact shard until the trained one is swapped in.

Searches run on a small pool of threads, one FAISS thread each: a single query gains
nothing from OpenMP inside FAISS (Flat over 1M: 88 ms on one thread, 131 ms on two), and
shards searched side by side use both cores. A whole-range query asks each shard only
for its share of k and goes deeper only into shards that may hold more of the top k.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
import structlog

from surveil.domain import ConfigError, Space, Vectors, as_vectors
from surveil.files import TMP_MARKER, fsync_dir, replacing
from surveil.index import factory as fx
from surveil.index.above import FIRST_K, best_first, rounds_depth, shard_above
from surveil.index.compressed import CALIBRATED_DEPTH, RERANK_EXTRA, CompressedShard, sidecars
from surveil.index.manifest import (
    ShardEntry,
    entry_for,
    read_manifest,
    trusted_count,
    write_manifest,
)
from surveil.index.training import BackgroundTrainer, TrainingRecord, train_shard
from surveil.ports import Ids, IndexHit, VectorMeta

log = structlog.get_logger(__name__)

SUFFIX = ".faiss"
ALL_STEM = "all"
#: With shard_by="none" there is one shard; ids_by_day reports it under this day.
UNSHARDED_DAY = date.min
#: Smallest share of k asked of one shard in a multi-shard search (deeper rounds follow
#: where a shard's last result could still be in the top k).
MIN_SHARD_K = 32
#: A compressed shard that grew this many times past the vectors it was trained on is
#: retrained: its lists were sized (about 4·sqrt(n)) for far fewer vectors.
RETRAIN_GROWTH = 4


class IndexMismatchError(ConfigError):
    """The index on disk cannot serve these vectors (model changed, file unreadable)."""


@dataclass(slots=True)
class _Shard:
    """One shard: its file, its index once loaded, and whether memory is ahead of disk."""

    path: Path
    index: Any = None
    dirty: bool = False
    device_copy: Any = None
    # (inode, size, mtime_ns) of the file the loaded index came from: refresh() compares it.
    stamp: tuple[int, int, int] | None = None
    # time.time() just before this process last wrote the file (see saved_at()).
    saved_at: float | None = None
    # Trained shards: how, and the recall measured (manifest `training`).
    record: TrainingRecord | None = None
    # While a background training runs on a snapshot: the changes made since, replayed
    # onto the trained shard before it is swapped in.
    journal: list[tuple[str, Ids, Vectors | None]] | None = None


class _ReadWriteLock:
    """Many searches at once, or one change to FAISS objects (add, remove) alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and self._readers == 0)
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _one_faiss_thread() -> None:
    faiss.omp_set_num_threads(1)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _day_of(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


class ShardedFaissIndex:
    """Inner-product search over appearance ids, one FAISS file per space and day."""

    def __init__(
        self,
        root: Path,
        *,
        factory: str = "Flat",
        shard_by: Literal["day", "none"] = "day",
        recall_target: float = 0.98,
        exact_below: int = 10_000,
        train_open_above: int = 100_000,
        search_threads: int | None = None,
        floors: Mapping[Space, float] | None = None,
    ) -> None:
        self.root = Path(root)
        self.factory = fx.parse_factory(factory).text
        self.shard_by = shard_by
        self.recall_target = recall_target
        self.exact_below = exact_below
        self.train_open_above = train_open_above
        # Per space, the min_score whose true matches a trained shard must find.
        self.floors = dict(floors or {})
        threads = search_threads or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="index-search", initializer=_one_faiss_thread
        )
        self._trainer = BackgroundTrainer()
        self._rw = _ReadWriteLock()
        self._lock = threading.RLock()
        self._shards: dict[Space, dict[str, _Shard]] = {}
        self._dims: dict[Space, int] = {}
        # Spaces whose manifest lacks or mistrusts an entry: the next save() rewrites it.
        self._stale_manifest: set[Space] = set()

    # ---- shard bookkeeping -------------------------------------------------------------

    def _stem(self, day: date) -> str:
        return ALL_STEM if self.shard_by == "none" else day.isoformat()

    def _space_shards(self, space: Space) -> dict[str, _Shard]:
        """The space's shards, discovered from disk on first use (files only, not loaded)."""
        shards = self._shards.get(space)
        if shards is not None:
            return shards
        shards = {}
        folder = self.root / space
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if TMP_MARKER in path.name:
                    # Left by a save that crashed before its rename; the real file is intact.
                    log.warning("index.stale_temp_removed", path=str(path))
                    path.unlink(missing_ok=True)
                elif path.suffix == SUFFIX and self._valid_stem(path.stem):
                    shards[path.stem] = _Shard(path=path)
                elif path.suffix == SUFFIX:
                    # Written under the other shard_by setting: not served, not deleted.
                    log.warning(
                        "index.foreign_shard_ignored",
                        path=str(path),
                        shard_by=self.shard_by,
                        hint="run `surveil index rebuild` after changing index.shard_by",
                    )
        self._shards[space] = shards
        return shards

    def _valid_stem(self, stem: str) -> bool:
        if self.shard_by == "none":
            return stem == ALL_STEM
        try:
            date.fromisoformat(stem)
        except ValueError:
            return False
        return True

    def _load(self, shard: _Shard) -> Any:
        if shard.index is None:
            # Stamped before reading: a file replaced mid-read is just reloaded next refresh.
            shard.stamp = _stamp(shard.path)
            try:
                loaded = faiss.read_index(str(shard.path))
                if isinstance(loaded, faiss.IndexIVF):  # a trained shard: codes + float files
                    shard.index = CompressedShard.load(shard.path, loaded)
                    shard.record = self._recorded_training(shard)
                else:
                    shard.index = loaded
            except (RuntimeError, OSError, ValueError) as exc:
                raise IndexMismatchError(
                    f"index shard {shard.path} is unreadable ({str(exc).splitlines()[0]}); "
                    "run `surveil index rebuild` to re-index from the catalog"
                ) from exc
            log.debug("index.shard_loaded", path=str(shard.path), vectors=int(shard.index.ntotal))
        return shard.index

    def _recorded_training(self, shard: _Shard) -> TrainingRecord | None:
        """The manifest's training record for a shard whose file it vouches for."""
        space, stem = shard.path.parent.name, shard.path.stem
        entries = read_manifest(self.root / space)
        entry = entries.get(stem)
        if entry is None or entry.training is None:
            return None
        if trusted_count(entries, stem, shard.path) is None:
            return None
        return TrainingRecord.from_dict(entry.training)

    def _dim(self, space: Space) -> int | None:
        """The space's dimension: remembered, else read from any shard on disk."""
        if space not in self._dims:
            shards = self._space_shards(space)
            loaded = [s for s in shards.values() if s.index is not None]
            # Else the newest day: the shard ingest appends to, so loading it is not wasted.
            source = loaded[0] if loaded else shards[max(shards)] if shards else None
            if source is not None:
                self._dims[space] = int(self._load(source).d)
        return self._dims.get(space)

    def _check_dim(self, space: Space, dim: int) -> None:
        expected = self._dim(space)
        if expected is None:
            self._dims[space] = dim
        elif dim != expected:
            raise IndexMismatchError(
                f"the {space!r} index holds {expected}-d vectors but got {dim}-d ones: the "
                "embedding model changed; run `surveil index rebuild` to re-index from the catalog"
            )

    def _overlapping(
        self, space: Space, since: datetime | None, until: datetime | None
    ) -> list[_Shard]:
        """Shards whose UTC day [d, d+1) meets the window [since, until]; all when unsharded."""
        shards = self._space_shards(space)
        if self.shard_by == "none":
            return list(shards.values())
        first = _day_of(since) if since is not None else date.min
        last = _day_of(until) if until is not None else date.max
        return [s for stem, s in shards.items() if first <= date.fromisoformat(stem) <= last]

    def _day_key(self, stem: str) -> date:
        return UNSHARDED_DAY if stem == ALL_STEM else date.fromisoformat(stem)

    def _selected(self, space: Space, days: Collection[date] | None) -> list[tuple[str, _Shard]]:
        """The space's shards by stem, sorted; only those of `days` when given."""
        shards = sorted(self._space_shards(space).items())
        if days is None:
            return shards
        stems = {self._stem(d) for d in days}
        return [(stem, shard) for stem, shard in shards if stem in stems]

    # ---- the VectorIndex port ----------------------------------------------------------

    @property
    def filters_inside(self) -> bool:
        """Camera and label filters run after the cut (the caller over-fetches); time
        windows pick shards."""
        return False

    def add(
        self,
        space: Space,
        ids: Ids,
        vectors: Vectors,
        days: Sequence[date],
        *,
        meta: Sequence[VectorMeta] | None = None,
    ) -> None:
        """Add a batch of track vectors, each to the shard of its day (`meta` unused)."""
        vectors = as_vectors(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if vectors.ndim != 2 or len(vectors) != len(ids) or len(ids) != len(days):
            raise ValueError(
                f"add needs matching ids/vectors/days, got {len(ids)} ids, "
                f"vectors of shape {vectors.shape}, {len(days)} days"
            )
        if len(ids) == 0:
            return
        by_day = {d: self._stem(d) for d in set(days)}  # a batch spans few days
        stems = np.array([by_day[d] for d in days])
        with self._lock, self._rw.write():
            self._check_dim(space, int(vectors.shape[1]))
            shards = self._space_shards(space)
            for stem in np.unique(stems):
                rows = stems == stem
                shard = shards.get(str(stem))
                if shard is None:
                    shard = _Shard(path=self.root / space / f"{stem}{SUFFIX}")
                    shard.index = fx.make_index(self.factory, int(vectors.shape[1]))
                    shards[str(stem)] = shard
                index = self._load(shard)
                batch_ids, batch = ids[rows], np.ascontiguousarray(vectors[rows])
                if isinstance(index, CompressedShard):
                    index.add(batch_ids, batch)
                else:
                    index.add_with_ids(batch, batch_ids)
                    shard.index = fx.maybe_upgrade(index, self.factory)
                if shard.journal is not None:
                    shard.journal.append(("add", batch_ids, batch))
                shard.dirty, shard.device_copy = True, None

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
        """The k best ids by cosine, best first, from the shards the time window touches.

        `cameras` and `labels` are not applied here (filters_inside is False).

        Scores are exact cosines on every shard type (compressed shards re-rank their
        candidates from the float vectors).
        """
        query = as_vectors(vector).reshape(1, -1)
        if k <= 0:
            return []
        with self._lock:
            shards = self._overlapping(space, since, until)
            if not shards:
                return []
            indexes = [self._load(shard) for shard in shards]  # before _check_dim: no extra loads
            self._check_dim(space, int(query.shape[1]))
            targets: list[tuple[Any, Any]] = []  # (index to search, its CPU original)
            for shard, index in zip(shards, indexes, strict=True):
                if index.ntotal == 0:
                    continue
                if isinstance(index, CompressedShard):
                    targets.append((index, index))  # codes + float re-rank stay on the CPU
                    continue
                if shard.device_copy is None:
                    shard.device_copy = fx.for_search(index)
                targets.append((shard.device_copy, index))
        with self._rw.read():
            return self._search_shards(targets, query, k)

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
        """Every id scoring >= min_score in the window (the best `limit`), best first.

        One range search per shard, side by side on the search pool, on the CPU indexes
        (see index/above.py); `cameras` and `labels` are not applied here. Scores are
        exact cosines, as from `search`.
        """
        query = as_vectors(vector).reshape(1, -1)
        if limit <= 0:
            return []
        with self._lock:
            shards = self._overlapping(space, since, until)
            indexes = [self._load(shard) for shard in shards]
            if shards:
                self._check_dim(space, int(query.shape[1]))
            targets = [
                (index, _calibrated(shard.record, min_score))
                for shard, index in zip(shards, indexes, strict=True)
                if index.ntotal
            ]
        with self._rw.read():
            parts = self._above(targets, query, min_score, FIRST_K)
            depth = rounds_depth(sum(len(ids) for _, ids in parts))
            if depth > CALIBRATED_DEPTH:  # deep: the trained shards again, more lists
                trained = [
                    i
                    for i, (idx, cal) in enumerate(targets)
                    if cal and isinstance(idx, CompressedShard)
                ]
                again = self._above([targets[i] for i in trained], query, min_score, depth)
                for i, part in zip(trained, again, strict=True):
                    parts[i] = part
            return best_first(parts, limit)

    def _above(
        self, targets: list[tuple[Any, bool]], query: Vectors, min_score: float, depth: int
    ) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
        """Each target's answer to shard_above, side by side on the search pool."""
        jobs = [
            self._pool.submit(
                shard_above, index, query, min_score, calibrated=calibrated, depth=depth
            )
            for index, calibrated in targets
        ]
        return [job.result() for job in jobs]

    def _search_shards(
        self, targets: list[tuple[Any, Any]], query: Vectors, k: int
    ) -> list[IndexHit]:
        """Top k over several shards, each asked for its share of k, deeper where needed.

        A shard holding n_i of N vectors first gets about 2·k·n_i/N (at least
        MIN_SHARD_K); a shard whose last answer still scores above the merged k-th is
        asked again four times deeper, so the result equals asking every shard for k.
        Compressed shards answer with their codes' scores; only the merged winners (k
        plus a margin) are re-ranked from the float files, so a whole-range search reads
        ~k float rows, not k per shard (10M vectors: the float file does not fit the
        page cache, and each row read can be a disk read).
        """
        final_k = k
        if any(isinstance(t[1], CompressedShard) for t in targets):
            k += RERANK_EXTRA
        sizes = [int(cpu.ntotal) for _, cpu in targets]
        total = sum(sizes)
        if len(targets) == 1:
            asked = [min(k, sizes[0])]
        else:
            # A compressed shard's cost is the lists it scans, whatever k: ask it for all k
            # at once rather than risk a second scan.
            asked = [
                min(k, n)
                if isinstance(cpu, CompressedShard)
                else min(k, n, max(MIN_SHARD_K, math.ceil(2 * k * n / total)))
                for n, (_, cpu) in zip(sizes, targets, strict=True)
            ]
        answers: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = [
            (np.zeros(0, np.float32), np.zeros(0, np.int64))
        ] * len(targets)
        todo = list(range(len(targets)))
        while todo:
            jobs = {i: self._pool.submit(_shard_search, targets[i], query, asked[i]) for i in todo}
            for i, job in jobs.items():
                answers[i] = job.result()
            hits = _merge([a[0] for a in answers], [a[1] for a in answers], k)
            kth = hits[-1].score if len(hits) >= k else -math.inf
            todo = [
                i
                for i, (scores, _) in enumerate(answers)
                if asked[i] < min(k, sizes[i]) and len(scores) >= asked[i] and scores[-1] >= kth
            ]
            for i in todo:
                asked[i] = min(k, sizes[i], asked[i] * 4)
        return _reranked(targets, answers, query, final_k) if k != final_k else hits

    def remove(self, space: Space, ids: Ids, *, days: Collection[date] | None = None) -> int:
        """Remove ids from the shards of `days` (default: every shard); returns how many went."""
        wanted = np.unique(np.asarray(ids, dtype=np.int64))
        if len(wanted) == 0:
            return 0
        removed = 0
        with self._lock, self._rw.write():
            for _, shard in self._selected(space, days):
                index = self._load(shard)
                here = wanted[np.isin(wanted, _held_ids(index))]
                if len(here) == 0:
                    continue
                if isinstance(index, CompressedShard):
                    removed += index.remove(here)
                else:
                    removed += fx.remove_ids(index, here)
                if shard.journal is not None:
                    shard.journal.append(("remove", here, None))
                shard.dirty, shard.device_copy = True, None
        return removed

    def ids_by_day(self, space: Space, *, days: Collection[date] | None = None) -> dict[date, Ids]:
        """Ids per shard day (UNSHARDED_DAY when shard_by='none'), loading only `days`' shards."""
        with self._lock:
            out: dict[date, Ids] = {}
            for stem, shard in self._selected(space, days):
                held = _held_ids(self._load(shard))
                if len(held):
                    out[self._day_key(stem)] = held
            return out

    def counts_by_day(self, space: Space) -> dict[date, int]:
        """Vectors per non-empty shard day, from the manifest where it vouches for the file."""
        with self._lock:
            shards = self._space_shards(space)
            unloaded = any(shard.index is None for shard in shards.values())
            entries = read_manifest(self.root / space) if unloaded else {}
            out: dict[date, int] = {}
            for stem, shard in sorted(shards.items()):
                n = None if shard.index is None else int(shard.index.ntotal)
                if n is None:
                    n = trusted_count(entries, stem, shard.path)
                if n is None:
                    log.info("index.manifest_miss", space=space, shard=stem)
                    n = int(self._load(shard).ntotal)
                    self._stale_manifest.add(space)
                if n:
                    out[self._day_key(stem)] = n
            return out

    def size(self, space: Space) -> int:
        """Vectors held for a space (counted from the manifest; loads only what it lacks)."""
        return sum(self.counts_by_day(space).values())

    def save(self) -> None:
        """Write every dirty shard atomically; delete the files of shards that became empty."""
        with self._lock:
            for space, shards in self._shards.items():
                changed = space in self._stale_manifest
                for stem, shard in list(shards.items()):
                    if not shard.dirty:
                        continue
                    changed = True
                    if shard.index.ntotal == 0:
                        _delete_files(shard.path)
                        del shards[stem]
                        log.info("index.shard_emptied", space=space, shard=stem)
                        continue
                    started = time.time()
                    if isinstance(shard.index, CompressedShard):
                        shard.index.write(shard.path)  # floats first: the codes commit
                        _write_atomic(shard.index.ivf, shard.path)
                    else:
                        _write_atomic(shard.index, shard.path)
                    shard.dirty, shard.stamp = False, _stamp(shard.path)
                    shard.saved_at = started
                if changed:  # after the shards: a stale entry only ever costs a load
                    self._write_manifest(space, shards)
            self._schedule_training()

    # ---- background training -----------------------------------------------------------

    def _wants_training(self, stem: str, shard: _Shard) -> bool:
        """Whether a loaded, saved shard should be (re)trained into the compressed type."""
        if fx.parse_factory(self.factory).kind != "auto" or shard.index is None or shard.dirty:
            return False
        n = int(shard.index.ntotal)
        if isinstance(shard.index, CompressedShard):
            trained = shard.record.vectors if shard.record else n
            return n >= RETRAIN_GROWTH * max(trained, 1)
        if n < self.exact_below:
            return False
        sealed = self.shard_by == "day" and date.fromisoformat(stem) < datetime.now(UTC).date()
        return sealed or n >= self.train_open_above

    def _schedule_training(self) -> None:
        """Queue every shard that should be trained (called after each save)."""
        for space, shards in self._shards.items():
            for stem, shard in shards.items():
                if self._wants_training(stem, shard):
                    self._trainer.submit(f"{space}/{stem}", partial(self._train, space, stem))

    def _train(self, space: Space, stem: str) -> None:
        """Train one shard from a snapshot, then swap it in with the changes made meanwhile."""
        with self._lock:
            shard = self._shards.get(space, {}).get(stem)
            if shard is None or not self._wants_training(stem, shard):
                return
            ids, vectors = _stored(shard.index)
            source, shard.journal = shard.index, []
        try:
            trained, record = train_shard(
                ids, vectors, recall_target=self.recall_target, floor=self.floors.get(space)
            )
            trained.write_floats(shard.path)  # harmless until the codes file replaces the old
        except BaseException:
            shard.journal = None
            raise
        with self._lock, self._rw.write():
            journal, shard.journal = shard.journal or [], None
            if self._shards.get(space, {}).get(stem) is not shard or shard.index is not source:
                log.info("index.training_discarded", space=space, shard=stem)
                return  # dropped, or replaced by another process meanwhile
            for op, op_ids, op_vectors in journal:
                if op == "add" and op_vectors is not None:
                    trained.add(op_ids, op_vectors)
                else:
                    trained.remove(op_ids)
            shard.index, shard.record, shard.device_copy = trained, record, None
            shard.dirty = True
            self._stale_manifest.add(space)
            self.save()

    def warm(self) -> threading.Thread:
        """Load every shard on a background thread, so the first search pays no load.

        A server calls this at start: searches meanwhile load what they need themselves
        (under the same lock), so warming only ever moves work earlier.
        """

        def load_all() -> None:
            started = time.perf_counter()
            loaded = 0
            for space in self._known_spaces():
                for stem in list(self._space_shards(space)):
                    with self._lock:
                        shard = self._space_shards(space).get(stem)
                        if shard is not None and shard.index is None:
                            try:
                                self._load(shard)
                                loaded += 1
                            except IndexMismatchError as exc:
                                log.error("index.warm_failed", error=str(exc))
                                continue
                        if shard is not None and isinstance(shard.index, CompressedShard):
                            shard.index.prefetch(shard.path)
                with self._lock:
                    dim = self._dim(space)
                if dim:  # one search starts the pool's threads and FAISS's lazy tables
                    self.search(space, np.ones(dim, np.float32) / np.sqrt(dim), 1)
            seconds = round(time.perf_counter() - started, 2)
            log.info("index.warmed", shards=loaded, seconds=seconds)

        thread = threading.Thread(target=load_all, name="index-warm", daemon=True)
        thread.start()
        return thread

    def wait_for_training(self, timeout: float | None = None) -> bool:
        """Block until background training is done (a batch command before it exits)."""
        pending = self._trainer.pending()
        if pending:
            log.info("index.training_wait", shards=pending)
        return self._trainer.wait(timeout)

    def train_now(self) -> int:
        """Train every shard that should be, in this thread; returns how many were trained."""
        trained = 0
        with self._lock:
            wanted = [
                (space, stem)
                for space in self._known_spaces()
                for stem, shard in self._space_shards(space).items()
                if self._load(shard) is not None and self._wants_training(stem, shard)
            ]
        for space, stem in wanted:
            self._train(space, stem)
            trained += 1
        return trained

    def _known_spaces(self) -> list[Space]:
        on_disk = [p.name for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else []
        return sorted(set(on_disk) | set(self._shards))  # type: ignore[arg-type]

    def training(self, space: Space) -> dict[date, TrainingRecord | None]:
        """Per shard day: how it was trained and its measured recall (None: exact shard)."""
        with self._lock:
            entries = read_manifest(self.root / space)
            out: dict[date, TrainingRecord | None] = {}
            for stem, shard in sorted(self._space_shards(space).items()):
                if shard.index is not None:
                    out[self._day_key(stem)] = shard.record
                    continue
                entry = entries.get(stem)
                raw = entry.training if entry is not None else None
                out[self._day_key(stem)] = None if raw is None else TrainingRecord.from_dict(raw)
            return out

    def _write_manifest(self, space: Space, shards: dict[str, _Shard]) -> None:
        """Record every clean shard's count; one neither loaded nor vouched for is left out."""
        old = read_manifest(self.root / space)
        entries: dict[str, ShardEntry] = {}
        for stem, shard in shards.items():
            if shard.index is None:
                if trusted_count(old, stem, shard.path) is not None:
                    entries[stem] = old[stem]
            elif not shard.dirty and shard.path.exists():
                saved = shard.saved_at
                if saved is None and trusted_count(old, stem, shard.path) is not None:
                    saved = old[stem].saved_at  # loaded, not written here: keep the record
                record = shard.record.as_dict() if shard.record else None
                entries[stem] = entry_for(shard.path, int(shard.index.ntotal), saved, record)
        write_manifest(self.root / space, entries, self._dims.get(space))
        self._stale_manifest.discard(space)

    def refresh(self) -> bool:
        """Pick up shards another process (ingest, retention) saved, added or deleted.

        A long-running reader (`surveil serve`) would otherwise search the index as it was
        when each shard first loaded. Costs one directory scan and a stat per shard; changed
        shards are only marked for a lazy reload. Shards with unsaved changes are kept.
        Returns whether anything changed.
        """
        changed = False
        with self._lock:
            for space, shards in self._shards.items():
                on_disk = self._scan(space)
                for stem, shard in list(shards.items()):
                    if shard.dirty:
                        continue
                    if stem not in on_disk:
                        del shards[stem]
                        changed = True
                    elif shard.index is not None and shard.stamp != _stamp(shard.path):
                        shard.index, shard.device_copy, shard.stamp = None, None, None
                        changed = True
                for stem, path in on_disk.items():
                    if stem not in shards:
                        shards[stem] = _Shard(path=path)
                        changed = True
                if changed and not any(s.dirty for s in shards.values()):
                    self._dims.pop(space, None)  # a rebuild may have changed the model
        if changed:
            log.debug("index.refreshed", root=str(self.root))
        return changed

    def _scan(self, space: Space) -> dict[str, Path]:
        """Shard files of a space on disk now, by stem (temp files and foreign shards skipped)."""
        folder = self.root / space
        if not folder.is_dir():
            return {}
        return {
            p.stem: p
            for p in folder.iterdir()
            if p.suffix == SUFFIX and TMP_MARKER not in p.name and self._valid_stem(p.stem)
        }

    # ---- beyond the port ---------------------------------------------------------------

    def drop_shard(self, space: Space, day: date) -> bool:
        """Forget a whole day of a space (retention): a file delete; True if it existed."""
        with self._lock:
            shards = self._space_shards(space)
            shard = shards.pop(self._stem(day), None)
            if shard is None:
                return False
            _delete_files(shard.path)
            self._stale_manifest.add(space)
            log.info("index.shard_dropped", space=space, day=day.isoformat())
            return True

    def saved_at(self, space: Space) -> dict[date, datetime]:
        """When each day's shard file was last written (clean shards only; dirty ones omitted).

        Reconcile refreshes tracks whose pooled vector changed after that time: a crash
        between a commit and the next save leaves an older vector under the same id.
        """
        with self._lock:
            recorded = read_manifest(self.root / space)
            out: dict[date, datetime] = {}
            for stem, shard in sorted(self._space_shards(space).items()):
                if shard.dirty:
                    continue
                when = shard.saved_at
                if when is None and trusted_count(recorded, stem, shard.path) is not None:
                    when = recorded[stem].saved_at
                if when is None:  # no record: the file's own clock (coarse, errs early)
                    try:
                        when = shard.path.stat().st_mtime
                    except OSError:
                        continue
                out[self._day_key(stem)] = datetime.fromtimestamp(when, UTC)
            return out

    def loaded_days(self, space: Space) -> list[date]:
        """Days whose shard is in memory now (for diagnostics and tests of shard pruning)."""
        with self._lock:
            shards = self._shards.get(space, {})
            return [self._day_key(stem) for stem, s in sorted(shards.items()) if s.index]

    def shard_days(self, space: Space) -> list[date]:
        """Days that have a shard, on disk or in memory, without loading any."""
        with self._lock:
            return [self._day_key(stem) for stem in sorted(self._space_shards(space))]


def _calibrated(record: TrainingRecord | None, min_score: float) -> bool:
    """Whether a trained shard's probe count was measured at a floor <= min_score."""
    return record is not None and record.floor is not None and min_score >= record.floor


def _shard_search(
    target: tuple[Any, Any], query: Vectors, k: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One shard's top k as (scores, ids), best first (runs on a search pool thread)."""
    index, cpu = target
    if isinstance(index, CompressedShard):
        return index.search(query, k, rerank=False)
    k = min(k, int(index.ntotal))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    if k > fx.GPU_MAX_K:
        index = cpu  # FAISS on a GPU refuses k above 2048: the CPU copy answers deep searches
    params = fx.search_params(index, k)
    dist, idx = index.search(query, k, params=params)
    return dist[0], idx[0]


def _reranked(
    targets: list[tuple[Any, Any]],
    answers: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    query: Vectors,
    k: int,
) -> list[IndexHit]:
    """Exact scores for the merged best k + margin (codes' scores re-ranked), top k of them."""
    scores = np.concatenate([a[0] for a in answers]).astype(np.float32)
    ids = np.concatenate([a[1] for a in answers]).astype(np.int64)
    origin = np.concatenate([np.full(len(a[1]), i) for i, a in enumerate(answers)])
    real = ids >= 0
    scores, ids, origin = scores[real], ids[real], origin[real]
    best = np.lexsort((ids, -scores))[: k + RERANK_EXTRA]
    scores, ids, origin = scores[best], ids[best], origin[best]
    for i in np.unique(origin):
        shard = targets[int(i)][1]
        if isinstance(shard, CompressedShard):
            mine = origin == i
            scores[mine] = shard.exact_scores(query.reshape(-1), ids[mine], scores[mine])
    order = np.lexsort((ids, -scores))[:k]
    return [IndexHit(id=int(ids[j]), score=float(scores[j])) for j in order]


def _merge(
    scores: list[np.ndarray[Any, Any]], labels: list[np.ndarray[Any, Any]], k: int
) -> list[IndexHit]:
    """Merge per-shard top-k lists into one, dropping FAISS's -1 padding."""
    if not scores:
        return []
    all_scores = np.concatenate(scores)
    all_ids = np.concatenate(labels)
    real = all_ids >= 0
    all_scores, all_ids = all_scores[real], all_ids[real]
    # Best score first; ties broken by id so results are stable across shard layouts.
    order = np.lexsort((all_ids, -all_scores))[:k]
    return [IndexHit(id=int(all_ids[i]), score=float(all_scores[i])) for i in order]


def _held_ids(index: Any) -> Ids:
    """Every id a shard holds, whatever its type."""
    if isinstance(index, CompressedShard):
        return index.ids()
    return faiss.vector_to_array(index.id_map).astype(np.int64)


def _stored(index: Any) -> tuple[Ids, Vectors]:
    """(ids, float vectors) a shard holds, for training or retraining."""
    if isinstance(index, CompressedShard):
        return index.vectors()
    return fx.stored_vectors(index)


def _delete_files(path: Path) -> None:
    """Delete a shard's codes file first (it commits the shard), then its float files."""
    existed = path.exists()
    path.unlink(missing_ok=True)
    for extra in sidecars(path):
        existed |= extra.exists()
        extra.unlink(missing_ok=True)
    if existed:
        fsync_dir(path.parent)


def _write_atomic(index: Any, path: Path) -> None:
    """Write a FAISS index so a reader sees the old file or the new, never half."""
    with replacing(path) as tmp:
        faiss.write_index(index, str(tmp))
