"""Rule evaluation's pure parts: scoring, one alert per sighting, cooldown, webhook timing."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from surveil.alerts.evaluate import best_scores, fold_hits, hits_over
from surveil.alerts.model import AlertDraft, Candidate, Hit, RuleSpec
from surveil.alerts.notify import backoff, headers, retryable, sign
from surveil.domain import InputError

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _hit(
    i: int, camera: str, seconds: float, score: float = 0.9, *, track: int | None = None
) -> Hit:
    return Hit(Candidate(i, camera, "person", T0 + timedelta(seconds=seconds), track), score)


def test_a_track_in_view_for_minutes_is_one_alert() -> None:
    """Every keyframe of one track extends one alert, however long it stays."""
    hits = [_hit(i, "a", i * 30.0, track=7) for i in range(10)]  # 4.5 min, gaps of 30 s
    folded = fold_hits(hits, {}, gap_s=5, cooldown_s=60)
    assert len(folded.new) == 1
    (alert,) = folded.new
    assert alert.hits == 10 and alert.track_id == 7


def test_another_track_alerts_after_the_cooldown_but_not_within_it() -> None:
    hits = [_hit(1, "a", 0, track=1), _hit(2, "a", 30, track=2), _hit(3, "a", 120, track=3)]
    folded = fold_hits(hits, {}, gap_s=5, cooldown_s=60)
    assert [d.track_id for d in folded.new] == [1, 3]  # track 2 came within the cooldown


def test_a_stored_track_alert_is_extended_not_repeated() -> None:
    stored = AlertDraft("a", "person", 1, 0.8, T0, T0, id=99, track_id=5)
    folded = fold_hits(
        [_hit(8, "a", 600, score=0.95, track=5)],
        {},
        gap_s=5,
        cooldown_s=60,
        track_alerts={5: stored},
    )
    assert folded.new == [] and folded.extended == [stored]
    assert stored.hits == 2 and stored.appearance_id == 8 and stored.score == 0.95


def test_best_score_is_the_closest_example() -> None:
    examples = np.eye(3, dtype=np.float32)[:2]  # two examples: x and y
    vectors = np.array([[1, 0, 0], [0, 0.6, 0.8], [0, 0, 1]], dtype=np.float32)
    assert best_scores(examples, vectors).tolist() == pytest.approx([1.0, 0.6, 0.0])


def test_hits_keep_only_scores_at_or_over_the_threshold_in_time_order() -> None:
    found = [
        Candidate(1, "a", "person", T0 + timedelta(seconds=5)),
        Candidate(2, "a", "person", T0),
        Candidate(3, "a", "person", T0),
    ]
    hits = hits_over(found, np.array([0.8, 0.7, 0.69], np.float32), 0.7)
    assert [h.candidate.id for h in hits] == [2, 1]


def test_consecutive_hits_of_one_sighting_make_one_alert() -> None:
    hits = [_hit(i, "lobby", i * 2.0, score=0.8 + i / 100) for i in range(10)]
    folded = fold_hits(hits, {}, gap_s=10, cooldown_s=0)
    assert len(folded.new) == 1
    alert = folded.new[0]
    assert alert.hits == 10 and alert.appearance_id == 9  # the best hit is the evidence
    assert alert.ts == T0 and alert.last_ts == T0 + timedelta(seconds=18)


def test_a_gap_longer_than_gap_s_starts_a_new_alert_after_the_cooldown() -> None:
    hits = [_hit(1, "lobby", 0), _hit(2, "lobby", 30), _hit(3, "lobby", 400)]
    folded = fold_hits(hits, {}, gap_s=10, cooldown_s=300)
    # 30 s later is a new sighting but inside the cooldown: folded into the first alert.
    assert [(a.appearance_id, a.hits) for a in folded.new] == [(1, 2), (3, 1)]


def test_cameras_alert_independently() -> None:
    hits = [_hit(1, "lobby", 0), _hit(2, "gate", 1), _hit(3, "lobby", 2)]
    folded = fold_hits(hits, {}, gap_s=10, cooldown_s=300)
    assert sorted((a.camera_id, a.hits) for a in folded.new) == [("gate", 1), ("lobby", 2)]


def test_hits_extend_a_stored_alert_once_and_do_not_renotify() -> None:
    stored = AlertDraft("lobby", "person", 7, 0.8, T0, T0 + timedelta(seconds=4), hits=3, id=42)
    hits = [_hit(8, "lobby", 8, 0.95), _hit(9, "lobby", 12)]
    folded = fold_hits(hits, {"lobby": stored}, gap_s=10, cooldown_s=0)
    assert folded.new == []
    assert folded.extended == [stored]
    assert (stored.hits, stored.appearance_id, stored.last_ts) == (5, 8, T0 + timedelta(seconds=12))


def test_old_footage_ingested_late_is_its_own_alert() -> None:
    stored = AlertDraft("lobby", "person", 7, 0.8, T0, T0, id=42)
    last_week = _hit(9, "lobby", -7 * 86400)
    folded = fold_hits([last_week], {"lobby": stored}, gap_s=10, cooldown_s=300)
    assert [a.appearance_id for a in folded.new] == [9] and folded.extended == []


def test_rule_spec_refuses_bad_values() -> None:
    with pytest.raises(InputError, match="threshold"):
        RuleSpec(name="x", threshold=1.5)
    with pytest.raises(InputError, match="webhook"):
        RuleSpec(name="x", threshold=0.5, webhooks=("file:///etc/passwd",))
    with pytest.raises(InputError, match="interval"):
        RuleSpec(name="x", threshold=0.5, interval_s=0)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for attempt, full in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        delays = [backoff(attempt, base=2.0, cap=60.0, rng=rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > 0  # jittered, not lock-step


def test_retryable_statuses() -> None:
    assert retryable(None) and retryable(500) and retryable(503) and retryable(429)
    assert not retryable(400) and not retryable(404) and not retryable(410)


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"event":"alert"}'
    hdrs = headers(delivery_id=5, body=body, secret="s" * 32, now=1_700_000_000.7)
    expected = hmac.new(b"s" * 32, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert hdrs["X-Surveil-Signature"] == f"sha256={expected}" == sign("s" * 32, "1700000000", body)
    assert "X-Surveil-Signature" not in headers(delivery_id=5, body=body, secret=None, now=0)
