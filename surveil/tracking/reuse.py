"""Which crops need no embedding: detections the tracker can continue without looking.

On a busy junction the embedder costs as much as the detector, yet most detections are an
object seen a tenth of a second earlier a few pixels away. A detection *surely* continues
an object when its box lies on the object's predicted box (IoU >= tracking.reuse_iou),
no other box or object overlaps either of them (AMBIGUOUS_IOU), its size barely changed,
the object was embedded at most tracking.reembed_seconds ago, and the crop is not
tracking.reembed_quality_gain times better than the best one embedded for it (so the
pooled vector takes the best crops). Such a detection carries its track's latest vector
and adds nothing to the pooled one. This generalises reusing the embedding of a box that
did not move: a parked car and a car crossing at a steady pace are both continued, and
both embedded again now and then.

The pipeline plans a whole batch before embedding it, keyframe by keyframe: an object
first seen (and embedded) inside the batch can already be continued in the batch's later
keyframes. A planned continuation names either an open track's key or the crop key of the
detection the object was last seen as; `IngestTracks.assign` resolves the latter once that
detection has been tracked, and embeds the crop after all if the track is not exactly in
the state the plan assumed (an embedded detection joined it meanwhile). Pure functions of
the tracker's state and the batch, so a resumed ingest plans exactly as an uninterrupted
one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from surveil.config.tracking import TrackingSettings
from surveil.domain import BBox, label_group
from surveil.tracking.boxes import box_iou
from surveil.tracking.state import (
    NO_VELOCITY,
    TrackState,
    Velocity,
    predict_box,
    still_open,
    velocity_between,
)

#: A second box overlapping this much makes a continuation ambiguous (two candidates).
AMBIGUOUS_IOU = 0.3
#: A box whose area changed more than this factor since the object's last one is a
#: changed crop (approaching, occluded, cut by the frame edge): it is embedded.
MAX_AREA_CHANGE = 1.25


def _area(box: BBox) -> float:
    return max((box[2] - box[0]) * (box[3] - box[1]), 1.0)


@dataclass(frozen=True, slots=True)
class Continuation:
    """A planned continuation: of what (a track key or an earlier crop key), and the state
    it was planned from. It holds only if the track is still exactly in that state when
    the keyframe is tracked; otherwise the crop is embedded after all."""

    ref: str
    last_ts: datetime
    last_box: BBox


@dataclass(slots=True)
class _Lead:
    """What the planner knows of one object while it plans through a batch."""

    ref: str
    group: str
    last_ts: datetime
    last_box: BBox
    velocity: Velocity
    embedded_ts: datetime | None
    best_quality: float
    #: Seen in two keyframes at least, so its motion is known: only then is it predicted
    #: well enough to continue (a person walking out of view uncovers the one behind).
    moving: bool

    def continued(self, ts: datetime, box: BBox) -> None:
        self.velocity = velocity_between(
            self.last_box, box, (ts - self.last_ts).total_seconds()
        ) or (self.velocity)
        self.last_ts, self.last_box = ts, box
        self.moving = True


class ReusePlanner:
    """Plans one camera's keyframes of a batch, from its tracks as they stood before it."""

    def __init__(
        self,
        settings: TrackingSettings,
        label_groups: Mapping[str, Sequence[str]],
        tracks: Sequence[TrackState],
    ) -> None:
        self._s = settings
        self._groups = label_groups
        self._leads = [
            _Lead(
                t.key,
                t.group,
                t.last_ts,
                t.last_bbox,
                t.velocity,
                t.embedded_ts,
                t.best_quality,
                t.members > 1,
            )
            for t in tracks
        ]

    def keyframe(
        self,
        ts: datetime,
        crop_keys: Sequence[str],
        boxes: Sequence[BBox],
        labels: Sequence[str],
        qualities: Sequence[float],
    ) -> list[Continuation | None]:
        """Per detection, what it surely continues, or None: embed it. Call once per
        keyframe, in capture order."""
        out: list[Continuation | None] = [None] * len(boxes)
        if not self._s.reuse_embeddings:
            return out
        self._leads = [x for x in self._leads if still_open(x.last_ts, ts, self._s.max_age_seconds)]
        groups = [label_group(label, self._groups) for label in labels]
        followed: dict[int, _Lead] = {}
        for group in dict.fromkeys(groups):
            rows = [i for i, g in enumerate(groups) if g == group]
            leads = [x for x in self._leads if x.group == group]
            followed.update(self._plan_group(ts, rows, leads, boxes, qualities, out))
        self._leads += [
            self._embedded_lead(ts, key, group, box, quality, followed.get(i))
            for i, (key, group, box, quality, ref) in enumerate(
                zip(crop_keys, groups, boxes, qualities, out, strict=True)
            )
            if ref is None
        ]
        return out

    @staticmethod
    def _embedded_lead(
        ts: datetime, key: str, group: str, box: BBox, quality: float, before: _Lead | None
    ) -> _Lead:
        """The lead an embedded detection starts; with the motion from the one object it
        overlapped, if any (most likely itself: its next detection may then be continued)."""
        if before is None:
            return _Lead(key, group, ts, box, NO_VELOCITY, ts, quality, moving=False)
        dt = (ts - before.last_ts).total_seconds()
        velocity = velocity_between(before.last_box, box, dt) or before.velocity
        return _Lead(key, group, ts, box, velocity, ts, quality, moving=True)

    def _plan_group(
        self,
        ts: datetime,
        rows: Sequence[int],
        leads: Sequence[_Lead],
        boxes: Sequence[BBox],
        qualities: Sequence[float],
        out: list[Continuation | None],
    ) -> dict[int, _Lead]:
        """Decide one label group's detections; update the leads they continue or blur.

        Returns, for detections to embed that overlap exactly one lead, that lead.
        """
        if not leads:
            return {}
        det = np.array([boxes[i] for i in rows], np.float32)
        pred = [predict_box(x.last_box, x.velocity, x.last_ts, ts) for x in leads]
        iou = box_iou(det, np.array(pred, np.float32))
        close = iou >= AMBIGUOUS_IOU
        for r, c in zip(*np.nonzero(iou >= self._s.reuse_iou), strict=True):
            i, lead = rows[int(r)], leads[int(c)]
            unique = close[r].sum() == 1 and close[:, c].sum() == 1
            if unique and lead.moving and self._fresh(lead, ts, boxes[i], qualities[i]):
                out[i] = Continuation(lead.ref, lead.last_ts, lead.last_box)
                lead.continued(ts, boxes[i])
        # An object near a detection that will be embedded may be joined by it: what it
        # is from here on is unknown until then, so it is no longer planned for (the
        # detection starts a lead of its own, which resolves to whatever it joins).
        blurred = {int(c) for r, c in zip(*np.nonzero(close), strict=True) if out[rows[r]] is None}
        self._leads = [x for x in self._leads if all(x is not leads[c] for c in blurred)]
        return {
            rows[r]: leads[int(np.argmax(close[r]))]
            for r in range(len(rows))
            if out[rows[r]] is None
            and close[r].sum() == 1
            and close[:, np.argmax(close[r])].sum() == 1
        }

    def _fresh(self, lead: _Lead, ts: datetime, box: BBox, quality: float) -> bool:
        """Whether the object's vector still stands for a crop of this box and quality."""
        s = self._s
        if lead.embedded_ts is None:
            return False
        if (ts - lead.embedded_ts).total_seconds() > s.reembed_seconds:
            return False
        if quality > lead.best_quality * s.reembed_quality_gain:
            return False
        change = _area(box) / _area(lead.last_box)
        return 1 / MAX_AREA_CHANGE <= change <= MAX_AREA_CHANGE
