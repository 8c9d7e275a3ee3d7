"""How many cameras a live worker should hold, and which to take or give back.

Pure decisions over what the catalog says (workers, leases, pins), so they are tested
without threads or clocks. The rules keep cameras spread without flapping:

- a worker's fair share is ceil(cameras it may read / live workers that may read them);
- it claims free (unleased or expired) cameras only up to its share;
- it gives back only what is above its share, or - when another eligible worker holds
  fewer than floor(cameras / workers) - ONE camera, and only if it is the busiest worker
  (ties: lowest id), so a newcomer fills up one camera per round without a stampede;
- a camera it gave back it does not claim again for a cool-down (the newcomer's turn).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from surveil.storage.leases import CameraLease, WorkerInfo


@dataclass(frozen=True)
class SharePlan:
    """One round's decision: cameras to claim (in order) and cameras to give back."""

    share: int
    claim: list[str]
    release: list[str]


def plan_share(
    *,
    me: WorkerInfo,
    cameras: Mapping[str, Collection[str]],
    workers: Sequence[WorkerInfo],
    leases: Mapping[str, CameraLease],
    held: Collection[str],
    now: datetime,
    cooling: Collection[str] = (),
    dead: Collection[str] = (),
) -> SharePlan:
    """Decide what `me` claims and gives back; `cameras` maps eligible id -> its tags.

    `workers` are the live ones (heartbeat valid); `dead` names lease owners known to be
    gone (a crashed process on this host), whose cameras count as free.
    """
    sharing = {w.id: w for w in workers if any(w.eligible(c, t) for c, t in cameras.items())}
    sharing[me.id] = me
    n_cams, n_workers = len(cameras), len(sharing)
    share = math.ceil(n_cams / n_workers) if n_cams else 0
    floor = n_cams // n_workers
    mine = sorted(c for c in held if c in cameras)
    release = mine[share:]
    counts = _live_counts(leases, now, set(sharing))
    counts[me.id] = len(mine)
    if not release and len(mine) > floor:
        release = _rebalance(me, mine, cameras, sharing, counts, floor)
    kept = len(mine) - len(release)
    free = [
        c
        for c in sorted(cameras)
        if c not in held
        and c not in cooling
        and (c not in leases or leases[c].lease_until < now or leases[c].owner in dead)
    ]
    return SharePlan(share, free[: max(0, share - kept)], release)


def _live_counts(
    leases: Mapping[str, CameraLease], now: datetime, owners: Collection[str]
) -> dict[str, int]:
    counts = dict.fromkeys(owners, 0)
    for lease in leases.values():
        if lease.lease_until >= now and lease.owner in counts:
            counts[lease.owner] += 1
    return counts


def _rebalance(
    me: WorkerInfo,
    mine: list[str],
    cameras: Mapping[str, Collection[str]],
    sharing: Mapping[str, WorkerInfo],
    counts: Mapping[str, int],
    floor: int,
) -> list[str]:
    """One camera for a starving worker, given by the busiest worker only (ties: lowest id)."""
    busiest = min(sharing, key=lambda w: (-counts.get(w, 0), w))
    if busiest != me.id:
        return []
    starving = [w for w in sharing.values() if w.id != me.id and counts.get(w.id, 0) < floor]
    wanted = [c for c in mine if any(w.eligible(c, cameras[c]) for w in starving)]
    return wanted[-1:]
