"""Threshold calibration from operator feedback, as pure functions over labelled scores.

Each labelled hit is (score, confirmed?) scored the way the threshold is applied (a
rule's best example similarity, a search's score). A threshold t catches every hit with
score >= t, so the precision/recall curve has one point per distinct labelled score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Labelled:
    """One labelled hit: its score for the query and the operator's verdict."""

    score: float
    confirmed: bool
    ref: str = ""  # what it is ("track:7"), for showing what a threshold catches


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """Precision and recall of the labelled hits when the threshold is `threshold`."""

    threshold: float
    precision: float
    recall: float
    caught: int  # confirmed hits at or above the threshold
    false_alarms: int  # rejected hits at or above it


@dataclass(frozen=True, slots=True)
class Proposal:
    """The lowest threshold reaching the precision, and what it would catch and miss.

    `threshold` is None when no threshold reaches the precision, or when there are too
    few labels (`needed` then says how many more confirmed and rejected hits it takes).
    """

    precision_target: float
    threshold: float | None
    precision: float | None
    recall: float | None
    curve: tuple[CurvePoint, ...]
    caught: tuple[Labelled, ...] = ()
    missed: tuple[Labelled, ...] = ()
    false_alarms: tuple[Labelled, ...] = ()
    needed_confirmed: int = 0
    needed_rejected: int = 0

    @property
    def enough(self) -> bool:
        """Whether there were enough labels to calibrate at all."""
        return self.needed_confirmed == 0 and self.needed_rejected == 0


def pr_curve(labelled: Sequence[Labelled]) -> list[CurvePoint]:
    """One point per distinct score, highest threshold first (recall grows down the list)."""
    positives = sum(1 for x in labelled if x.confirmed)
    ordered = sorted(labelled, key=lambda x: -x.score)
    points: list[CurvePoint] = []
    tp = fp = 0
    for i, item in enumerate(ordered):
        tp += item.confirmed
        fp += not item.confirmed
        if i + 1 < len(ordered) and ordered[i + 1].score == item.score:
            continue  # a threshold cannot split equal scores
        points.append(
            CurvePoint(
                threshold=item.score,
                precision=tp / (tp + fp),
                recall=tp / positives if positives else 0.0,
                caught=tp,
                false_alarms=fp,
            )
        )
    return points


def propose(
    labelled: Sequence[Labelled],
    *,
    precision: float,
    min_confirmed: int,
    min_rejected: int,
) -> Proposal:
    """The lowest threshold whose caught hits reach `precision` (the most recall it allows).

    With fewer than `min_confirmed` confirmed or `min_rejected` rejected labels, no
    threshold is proposed: a precision measured on a handful of labels is a guess.
    """
    if not 0.0 < precision <= 1.0:
        raise ValueError(f"precision {precision} must be in (0, 1]")
    confirmed = sum(1 for x in labelled if x.confirmed)
    rejected = len(labelled) - confirmed
    need_c, need_r = max(0, min_confirmed - confirmed), max(0, min_rejected - rejected)
    curve = tuple(pr_curve(labelled))
    if need_c or need_r:
        return Proposal(precision, None, None, None, curve, (), (), (), need_c, need_r)
    reaching = [p for p in curve if p.precision >= precision]
    if not reaching:
        return Proposal(precision, None, None, None, curve)
    best = min(reaching, key=lambda p: p.threshold)
    return Proposal(
        precision_target=precision,
        threshold=best.threshold,
        precision=best.precision,
        recall=best.recall,
        curve=curve,
        caught=tuple(x for x in labelled if x.confirmed and x.score >= best.threshold),
        missed=tuple(x for x in labelled if x.confirmed and x.score < best.threshold),
        false_alarms=tuple(x for x in labelled if not x.confirmed and x.score >= best.threshold),
    )
