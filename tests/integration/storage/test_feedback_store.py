"""SqlFeedback (verdicts on hits, calibrated space floors) against real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from surveil.domain import FeedbackTarget, InputError
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.feedback import SqlFeedback
from surveil.storage.migrate import upgrade


@pytest.fixture
def store(database_url: str) -> Iterator[SqlFeedback]:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield SqlFeedback(make_session_factory(engine))
    finally:
        engine.dispose()


def test_a_second_verdict_replaces_the_first_and_clear_forgets_it(store: SqlFeedback) -> None:
    hit = FeedbackTarget(audit_id=7, track_id=3)
    first = store.mark(hit, verdict="confirmed", space="person", score=0.8, key_id=1, key_name="a")
    other = FeedbackTarget(audit_id=7, appearance_id=9)
    store.mark(other, verdict="rejected", space="person", score=0.5, key_id=None, key_name="cli:b")
    second = store.mark(hit, verdict="rejected", space="person", score=0.8, key_id=2, key_name="b")
    assert second.id != first.id
    listed = store.for_search(7)
    assert [(f.target.hit_key, f.verdict, f.key_name) for f in listed] == [
        ("appearance:9", "rejected", "cli:b"),
        ("track:3", "rejected", "b"),
    ]
    assert store.for_search(8) == [] and [f.id for f in store.for_space("person")] == [
        f.id for f in listed
    ]
    assert store.clear(hit) is True and store.clear(hit) is False
    assert [f.target.hit_key for f in store.for_search(7)] == ["appearance:9"]


def test_rule_and_alert_verdicts_are_listed_by_rule(store: SqlFeedback) -> None:
    target = FeedbackTarget(rule_id=4, alert_id=11, track_id=5)
    store.mark(target, verdict="confirmed", space="general", score=None, key_id=1, key_name="a")
    (found,) = store.for_rule(4)
    assert (found.target.alert_id, found.target.track_id, found.space) == (11, 5, "general")
    assert found.ts.tzinfo is not None and found.score is None


def test_space_floor_is_stored_and_replaced(store: SqlFeedback) -> None:
    assert store.floor("person") is None
    store.set_floor("person", min_score=0.71, precision=0.93, labels=14, by="a")
    floor = store.set_floor("person", min_score=0.74, precision=0.95, labels=20, by="b")
    got = store.floor("person")
    assert got == floor and (got.min_score, got.labels, got.set_by) == (0.74, 20, "b")
    assert store.floor("general") is None


def test_a_target_must_name_one_query_and_one_hit() -> None:
    with pytest.raises(InputError, match="exactly one hit"):
        FeedbackTarget(audit_id=1, track_id=2, appearance_id=3)
    with pytest.raises(InputError, match="needs a query"):
        FeedbackTarget(track_id=2)
    with pytest.raises(InputError, match="not both"):
        FeedbackTarget(audit_id=1, rule_id=2, track_id=2)
    assert FeedbackTarget(alert_id=3).alert_id == 3  # an alert names its rule and hit itself


def test_confirmed_hits_of_one_query_are_one_identity_for_tuning(
    store: SqlFeedback, database_url: str
) -> None:
    """`embedder tune` learns from feedback: a query's confirmed hits pair up, nothing else."""
    from surveil.storage.tune_data import confirmed_matches

    def mark(target: FeedbackTarget, verdict: str, space: str = "person") -> None:
        store.mark(target, verdict=verdict, space=space, score=0.8, key_id=1, key_name="a")  # type: ignore[arg-type]

    mark(FeedbackTarget(audit_id=7, appearance_id=9), "confirmed")
    mark(FeedbackTarget(audit_id=7, appearance_id=12), "confirmed")
    mark(FeedbackTarget(audit_id=7, appearance_id=15), "confirmed")
    mark(FeedbackTarget(audit_id=7, appearance_id=13), "rejected")
    mark(FeedbackTarget(audit_id=8, appearance_id=30), "confirmed")  # alone: no pair
    mark(FeedbackTarget(audit_id=8, track_id=99), "confirmed")  # a track with no rows left
    mark(FeedbackTarget(rule_id=4, appearance_id=20), "confirmed", "general")
    mark(FeedbackTarget(rule_id=4, appearance_id=21), "confirmed", "general")
    engine = make_engine(database_url)
    try:
        assert sorted(confirmed_matches(engine)) == [(9, 12), (9, 15)]
        assert confirmed_matches(engine, space="general") == [(20, 21)]
    finally:
        engine.dispose()
