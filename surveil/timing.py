"""Seconds per named stage of a piece of work (an ingest run, one search).

Benchmarks, logs and the `Server-Timing` header all say where time went by stage; this is
the one way they add it up.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageTimer:
    """Wall seconds per stage; a stage can run many times and its seconds add up."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    # Also told each stage's seconds (ingest feeds its Prometheus stage counter).
    sink: Callable[[str, float], None] | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as part of stage `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[name] += spent
            if self.sink is not None:
                self.sink(name, spent)
