"""Unlinking a batch's files while the next batch's rows are deleted.

A retention run is row deletes (database-bound) and file deletes (disk-bound); done one
after the other, a day at 1M stored appearances spent ~2 s in each. Once a batch's
transaction has committed, its files belong to no row, so they can go at once, on a
background thread, while the next batch runs. The journal entries stay until the drain
forgets them, so a crash anywhere still leaves the next run to finish the job; the drain
takes the sizes these deletes found instead of deleting the same files again.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from surveil.ports import BlobInventory


class EarlyUnlinks:
    """Committed batches' files, deleted in the background in submission order."""

    def __init__(self, files: BlobInventory) -> None:
        self._files = files
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retention-files")
        self._pending: list[tuple[list[str], Future[list[int | None]]]] = []
        self._done: dict[str, int | None] = {}

    def __enter__(self) -> EarlyUnlinks:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=kind is not None)

    def submit(self, paths: Sequence[str]) -> None:
        """Delete these files (of a committed batch) in the background."""
        if paths:
            wanted = list(paths)
            self._pending.append((wanted, self._pool.submit(self._files.delete_many, wanted)))

    def settle(self) -> None:
        """Wait for every submitted delete (raising its error, if any)."""
        pending, self._pending = self._pending, []
        for paths, future in pending:
            for path, size in zip(paths, future.result(), strict=True):
                if self._done.get(path) is None:  # a file two rows shared: its size once
                    self._done[path] = size

    def take(self, paths: Sequence[str]) -> tuple[list[int | None], list[str]]:
        """Sizes of the paths already deleted here (each given once), and the others."""
        sizes: list[int | None] = []
        rest: list[str] = []
        for path in paths:
            if path in self._done:
                sizes.append(self._done.pop(path))
            else:
                rest.append(path)
        return sizes, rest

    def forget(self) -> None:
        """Drop what no journal entry claimed (bounds memory across drains)."""
        self._done.clear()
