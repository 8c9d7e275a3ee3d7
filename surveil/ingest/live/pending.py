"""The bounded queue between camera readers and the one batched model path.

Live readers must never wait for slow models, so a full queue drops its OLDEST keyframe
(the newest scene matters most) and reports whose it was; a producer that must not lose
anything (a recorded file) waits for room instead.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from surveil.domain import Keyframe


@dataclass(frozen=True)
class PendingKeyframe:
    """A keyframe waiting for the models, with where it goes and when it was captured."""

    keyframe: Keyframe
    source_id: int
    captured: float  # time.monotonic() at capture, for capture-to-searchable latency

    @property
    def camera_id(self) -> str:
        return self.keyframe.frame.camera_id


class PendingQueue:
    """Bounded FIFO with drop-oldest for live producers and blocking for recorded ones."""

    def __init__(self, capacity: int, *, on_drop: Callable[[str], None]) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._items: deque[PendingKeyframe] = deque()
        self._cond = threading.Condition()
        self._on_drop = on_drop
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: PendingKeyframe, *, block: bool, stop: threading.Event) -> bool:
        """Queue a keyframe; False only if a blocking put was stopped or the queue closed."""
        dropped: PendingKeyframe | None = None
        with self._cond:
            while block and len(self._items) >= self._capacity:
                if stop.is_set() or self._closed:
                    return False
                self._cond.wait(0.1)
            if self._closed:
                return False
            if len(self._items) >= self._capacity:
                dropped = self._items.popleft()
            self._items.append(item)
            self._cond.notify_all()
        if dropped is not None:
            self._on_drop(dropped.camera_id)
        return True

    def take(self, max_items: int, *, wait: float, gather: float) -> list[PendingKeyframe]:
        """Up to `max_items`: waits up to `wait` for the first, then `gather` for the rest.

        The gather deadline is what lets batches form across cameras without holding a
        lone keyframe back for long.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout=wait):
                return []
            deadline = time.monotonic() + gather
            while len(self._items) < max_items and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            out = [self._items.popleft() for _ in range(min(max_items, len(self._items)))]
            self._cond.notify_all()
            return out

    def count(self, camera_id: str) -> int:
        """Keyframes of one camera still waiting (a camera handed back waits for zero)."""
        with self._cond:
            return sum(1 for i in self._items if i.camera_id == camera_id)

    def remove(self, camera_id: str) -> list[PendingKeyframe]:
        """Take one camera's keyframes out (its lease went to another worker)."""
        with self._cond:
            out = [i for i in self._items if i.camera_id == camera_id]
            if out:
                self._items = deque(i for i in self._items if i.camera_id != camera_id)
                self._cond.notify_all()
            return out

    def close(self) -> None:
        """Refuse new keyframes and wake every waiter; what is queued can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def clear(self) -> list[PendingKeyframe]:
        """Remove and return everything still queued (at a shutdown deadline)."""
        with self._cond:
            out = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return out
