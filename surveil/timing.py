"""Seconds per named stage of a piece of work (an ingest run, one search).

Benchmarks, logs and the `Server-Timing` header all say where time went by stage; this is
the one way they add it up.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StageTimer:
    """Wall seconds per stage; a stage can run many times and its seconds add up."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as part of stage `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
