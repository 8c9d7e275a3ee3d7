"""Threshold calibration from labelled hits: the PR curve and the proposed threshold."""

from __future__ import annotations

import pytest

from surveil.alerts.calibrate import Labelled, pr_curve, propose


def _hits(confirmed: list[float], rejected: list[float]) -> list[Labelled]:
    return [Labelled(s, True, f"c{s}") for s in confirmed] + [
        Labelled(s, False, f"r{s}") for s in rejected
    ]


def test_curve_has_one_point_per_distinct_score_with_counts() -> None:
    curve = pr_curve(_hits([0.9, 0.8, 0.8], [0.85, 0.5]))
    assert [p.threshold for p in curve] == [0.9, 0.85, 0.8, 0.5]
    assert [(p.caught, p.false_alarms) for p in curve] == [(1, 0), (1, 1), (3, 1), (3, 2)]
    assert curve[2].precision == pytest.approx(0.75)
    assert curve[2].recall == pytest.approx(1.0)


def test_proposes_the_lowest_threshold_that_reaches_the_precision() -> None:
    # Confirmed at 0.95..0.70, rejected at 0.72, 0.66, 0.60, 0.55, 0.40.
    labelled = _hits([0.95, 0.9, 0.85, 0.8, 0.75, 0.7], [0.72, 0.66, 0.6, 0.55, 0.4])
    exact = propose(labelled, precision=1.0, min_confirmed=3, min_rejected=3)
    assert exact.threshold == 0.75  # 0.72 is a false alarm: 1.0 precision stops above it
    assert exact.recall == pytest.approx(5 / 6)
    assert [x.score for x in exact.missed] == [0.7]
    assert exact.false_alarms == ()
    looser = propose(labelled, precision=0.85, min_confirmed=3, min_rejected=3)
    assert looser.threshold == 0.7  # 6 caught, 1 false alarm: precision 6/7 = 0.857
    assert looser.precision == pytest.approx(6 / 7)
    assert [x.ref for x in looser.false_alarms] == ["r0.72"]
    assert looser.missed == ()


def test_too_few_labels_say_how_many_more_instead_of_guessing() -> None:
    got = propose(_hits([0.9, 0.8], [0.3]), precision=0.9, min_confirmed=5, min_rejected=3)
    assert got.threshold is None and not got.enough
    assert (got.needed_confirmed, got.needed_rejected) == (3, 2)


def test_unreachable_precision_proposes_nothing() -> None:
    got = propose(_hits([0.5, 0.4], [0.9, 0.8]), precision=0.9, min_confirmed=2, min_rejected=2)
    assert got.enough and got.threshold is None


def test_precision_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        propose([], precision=0.0, min_confirmed=0, min_rejected=0)
