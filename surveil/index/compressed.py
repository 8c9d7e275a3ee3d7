"""A trained day-shard: IVF lists of 8-bit codes in memory, exact floats on disk for re-rank.

Why this layout (docs/performance.md, "A month of a site"): an exact shard costs a scan of
every vector and 4 bytes per dimension of RAM; 10M 512-d vectors would be 20 GiB. Here
the in-memory index is `IVF{nlist},SQ8` (one byte per dimension, FAISS's own ids, so it
removes in place) and the float vectors live in a memory-mapped `.npy` beside it. A
search scans a few lists of codes, then re-scores just its candidates from the floats,
so the scores a search returns are exact cosines, as they are from a Flat shard.

Files of a shard `<stem>`: `<stem>.faiss` (the codes; written last, it is the commit
point), `<stem>.ids.npy` + `<stem>.vectors.npy` (floats of the vectors the shard was
trained with, sorted by id), `<stem>.tail.npz` (floats of vectors added since, small).
A removed vector's float row is zeroed on the next write, so retention leaves no copy.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import structlog

from surveil.domain import Vectors
from surveil.files import replacing
from surveil.ports import Ids

log = structlog.get_logger(__name__)
_faiss: Any = faiss  # the stubs lack SearchParametersIVF's keyword constructor

IDS_SUFFIX = ".ids.npy"
VECTORS_SUFFIX = ".vectors.npy"
TAIL_SUFFIX = ".tail.npz"
SIDECAR_SUFFIXES = (IDS_SUFFIX, VECTORS_SUFFIX, TAIL_SUFFIX)
#: The k at which a shard's recall@k is measured (reported beside true-match recall).
RECALL_K = 100
#: How deep calibration looks for true matches; only searches deeper probe more lists.
CALIBRATED_DEPTH = 1000
#: Candidates fetched from the codes beyond k, re-scored exactly, so a vector whose 8-bit
#: score fell just under the k-th is not lost to quantisation error.
RERANK_EXTRA = 16
#: How far under a range search's floor a code score may be and still be re-scored: the
#: 8-bit codes' scores are within ~1e-3 of the exact cosine.
CODE_MARGIN = 0.01


def sidecars(faiss_path: Path) -> list[Path]:
    """The files that belong to a shard besides its `.faiss` file."""
    stem = faiss_path.with_suffix("")
    return [stem.with_name(stem.name + suffix) for suffix in SIDECAR_SUFFIXES]


def _sidecar(faiss_path: Path, suffix: str) -> Path:
    stem = faiss_path.with_suffix("")
    return stem.with_name(stem.name + suffix)


def nlist_for(n: int) -> int:
    """IVF lists for n vectors: about 4·sqrt(n), with at least 39 training points per list."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def _save_npy(path: Path, array: np.ndarray[Any, Any]) -> None:
    with replacing(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, array)


class CompressedShard:
    """One trained shard: search by codes, re-rank exactly, add/remove in place."""

    def __init__(self, ivf: Any, ids: Ids, vectors: Vectors, tail: dict[int, Vectors]) -> None:
        self.ivf = ivf
        self._ids = ids  # sorted, the rows of `_vectors`
        self._vectors = vectors  # memory-mapped once loaded from disk
        self._tail = tail  # vectors added after training, newest wins
        self._scrub: set[int] = set()  # removed ids whose float rows are still on disk
        self._tail_dirty = False

    # ---- building and files ------------------------------------------------------------

    @classmethod
    def train(
        cls, ids: Ids, vectors: Vectors, *, nlist: int, seed: int = 0, niter: int = 10
    ) -> CompressedShard:
        """Train lists and 8-bit ranges on (a sample of) the vectors, then add them all."""
        dim = int(vectors.shape[1])
        # FAISS's Python layer keeps the quantizer alive as long as the IVF (a reference
        # taken in the constructor); an index read from disk owns its quantizer itself.
        ivf: Any = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim),
            dim,
            nlist,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        ivf.cp.niter = niter
        ivf.cp.seed = seed
        # Spherical k-means: unit centroids, so a vector goes to the list it is most
        # similar to, not to the longest centroid. On re-ID-like vectors (all sharing a
        # strong mean direction) this halved the largest list (6.9x -> 3.5x the mean) and
        # raised true-match recall at 64 probes from 0.974 to 0.990 (33k vectors, 2026-12-06).
        ivf.cp.spherical = True
        rng = np.random.default_rng(seed)
        sample_size = min(len(vectors), 40 * nlist)  # FAISS wants >= 39 points per list
        sample = vectors[np.sort(rng.choice(len(vectors), sample_size, replace=False))]
        ivf.train(np.ascontiguousarray(sample))
        order = np.argsort(ids, kind="stable")
        ids, vectors = ids[order], np.ascontiguousarray(vectors[order])
        ivf.add_with_ids(vectors, ids)
        return cls(ivf, ids, vectors, {})

    @classmethod
    def load(cls, path: Path, ivf: Any) -> CompressedShard:
        """Open a written shard: codes already read by the caller, floats memory-mapped."""
        ids = np.load(_sidecar(path, IDS_SUFFIX))
        vectors = np.load(_sidecar(path, VECTORS_SUFFIX), mmap_mode="r")
        tail: dict[int, Vectors] = {}
        tail_path = _sidecar(path, TAIL_SUFFIX)
        if tail_path.exists():
            with np.load(tail_path) as saved:
                for i, v in zip(saved["ids"].tolist(), saved["vectors"], strict=True):
                    tail[int(i)] = np.asarray(v, dtype=np.float32)
        return cls(ivf, ids, vectors, tail)

    def prefetch(self, path: Path) -> None:
        """Ask the kernel to read the float file into the page cache now (asynchronously).

        A re-rank touches a few rows at random; on a cold cache each is a disk read, and
        the first search after a start paid ~90 ms for them (60k vectors, 2026-12-06).
        """
        floats = _sidecar(path, VECTORS_SUFFIX)
        if not hasattr(os, "posix_fadvise"):
            return
        fd = os.open(floats, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)

    def write_floats(self, path: Path) -> None:
        """Write the trained floats (before the `.faiss` file: that one commits the shard)."""
        _save_npy(_sidecar(path, IDS_SUFFIX), np.asarray(self._ids))
        _save_npy(_sidecar(path, VECTORS_SUFFIX), np.asarray(self._vectors))
        self._vectors = np.load(_sidecar(path, VECTORS_SUFFIX), mmap_mode="r")

    def write(self, path: Path) -> None:
        """Persist removals and the tail; the caller then writes the codes (`ivf`)."""
        if self._scrub:
            self._zero_rows(path, self._scrub)
            self._scrub.clear()
        if self._tail_dirty or _sidecar(path, TAIL_SUFFIX).exists() != bool(self._tail):
            self._write_tail(path)
            self._tail_dirty = False

    def _zero_rows(self, path: Path, removed: set[int]) -> None:
        """Overwrite removed vectors' floats in place: deleted means gone from disk too."""
        wanted = np.fromiter(removed, dtype=np.int64)
        rows = np.searchsorted(self._ids, wanted)
        rows = rows[rows < len(self._ids)]
        rows = rows[np.isin(self._ids[rows], wanted)]
        if len(rows) == 0:
            return
        floats = np.load(_sidecar(path, VECTORS_SUFFIX), mmap_mode="r+")
        floats[rows] = 0.0
        floats.flush()
        del floats
        self._vectors = np.load(_sidecar(path, VECTORS_SUFFIX), mmap_mode="r")

    def _write_tail(self, path: Path) -> None:
        target = _sidecar(path, TAIL_SUFFIX)
        if not self._tail:
            target.unlink(missing_ok=True)
            return
        ids = np.fromiter(self._tail, dtype=np.int64, count=len(self._tail))
        vectors = np.stack([self._tail[int(i)] for i in ids]).astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids, vectors=vectors)
        with replacing(target) as tmp:
            tmp.write_bytes(buffer.getvalue())

    # ---- the shard interface -----------------------------------------------------------

    @property
    def ntotal(self) -> int:
        return int(self.ivf.ntotal)

    @property
    def d(self) -> int:
        return int(self.ivf.d)

    @property
    def nlist(self) -> int:
        return int(self.ivf.nlist)

    @property
    def nprobe(self) -> int:
        return int(self.ivf.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.ivf.nprobe = int(max(1, min(value, self.nlist)))

    def probes_for(self, k: int) -> int:
        """Lists to probe for k results: the calibrated count, scaled up for deep searches.

        Calibration already counted every true match up to CALIBRATED_DEPTH, so k up to
        there needs no more lists; asking a shard for more results costs only a heap.
        """
        return min(self.nlist, max(self.nprobe, math.ceil(self.nprobe * k / CALIBRATED_DEPTH)))

    def search(
        self, query: Vectors, k: int, *, nprobe: int | None = None, rerank: bool = True
    ) -> tuple[np.ndarray[Any, Any], Ids]:
        """The k best (score, id) pairs, best first; fewer when the shard is smaller.

        Scores are exact unless `rerank` is off: then they are the 8-bit codes' (within
        ~1e-3), for a caller that merges several shards and re-ranks only the winners.
        """
        k = min(k, self.ntotal)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        fetch = min(self.ntotal, k + RERANK_EXTRA) if rerank else k
        probes = self.probes_for(k) if nprobe is None else nprobe
        params = _faiss.SearchParametersIVF(nprobe=probes)
        approx, found = self.ivf.search(query.reshape(1, -1), fetch, params=params)
        keep = found[0] >= 0
        ids = found[0][keep].astype(np.int64)
        if not rerank:
            return approx[0][keep], ids
        scores = self.exact_scores(query.reshape(-1), ids, approx[0][keep])
        order = np.lexsort((ids, -scores))[:k]
        return scores[order], ids[order]

    def above(
        self, query: Vectors, min_score: float, *, depth: int = CALIBRATED_DEPTH
    ) -> tuple[np.ndarray[Any, Any], Ids]:
        """Every vector scoring >= min_score over the lists a search `depth` deep probes
        (probes_for), exact scores, unsorted.

        One range search over the codes at min_score - CODE_MARGIN (an 8-bit code's score
        is within ~1e-3), then each candidate is re-scored from the floats and kept only
        if its exact score reaches min_score.
        """
        params = _faiss.SearchParametersIVF(nprobe=self.probes_for(depth))
        vector = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        _, approx, found = self.ivf.range_search(vector, min_score - CODE_MARGIN, params=params)
        ids = found.astype(np.int64)
        scores = self.exact_scores(vector.reshape(-1), ids, approx)
        keep = scores >= min_score
        return scores[keep], ids[keep]

    def exact_scores(
        self, query: Vectors, ids: Ids, fallback: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        """Cosine of the query to each id's float vector (tail first, then the trained rows)."""
        scores = np.array(fallback, dtype=np.float32, copy=True)
        if len(ids) == 0:
            return scores
        rows = np.searchsorted(self._ids, ids)
        rows[rows >= len(self._ids)] = 0
        on_disk = self._ids[rows] == ids
        if self._tail:
            in_tail = np.fromiter((int(i) in self._tail for i in ids), dtype=bool, count=len(ids))
            for j in np.flatnonzero(in_tail):
                scores[j] = float(self._tail[int(ids[j])] @ query)
            on_disk &= ~in_tail
        if on_disk.any():
            picked = np.flatnonzero(on_disk)
            order = np.argsort(rows[picked])  # ascending rows: sequential reads of the map
            floats = np.asarray(self._vectors[rows[picked][order]], dtype=np.float32)
            scores[picked[order]] = floats @ query.astype(np.float32)
        return scores

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Add (or replace: remove first) vectors; their floats go to the tail."""
        self.ivf.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        for i, v in zip(ids.tolist(), vectors, strict=True):
            self._tail[int(i)] = np.array(v, dtype=np.float32)
            self._scrub.discard(int(i))
        self._tail_dirty = True

    def remove(self, ids: Ids) -> int:
        """Remove ids from the lists in place; their floats are zeroed at the next write."""
        removed = int(self.ivf.remove_ids(faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids))))
        if removed:
            for i in ids.tolist():
                if self._tail.pop(int(i), None) is not None:
                    self._tail_dirty = True
                self._scrub.add(int(i))
        return removed

    def ids(self) -> Ids:
        """Every id the lists hold (read from FAISS's inverted lists, not the float file)."""
        invlists = self.ivf.invlists
        parts = []
        for list_no in range(self.nlist):
            size = invlists.list_size(list_no)
            if size:
                ptr = invlists.get_ids(list_no)
                parts.append(faiss.rev_swig_ptr(ptr, size).copy())
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def vectors(self) -> tuple[Ids, Vectors]:
        """(ids, float vectors) of everything the shard holds now, for a retrain."""
        held = np.sort(self.ids())
        rows = np.searchsorted(self._ids, held)
        rows[rows >= len(self._ids)] = 0
        out = np.zeros((len(held), self.d), np.float32)
        on_disk = self._ids[rows] == held
        out[on_disk] = self._vectors[rows[on_disk]]
        for j in np.flatnonzero(~on_disk | np.isin(held, list(self._tail))):
            out[j] = self._tail[int(held[j])]
        return held, out

    def memory_bytes(self) -> int:
        """Resident bytes of codes, ids and lists (the float file is mapped, not counted)."""
        return int(self.ntotal * (self.ivf.code_size + 8) + self.nlist * self.d * 4)
