"""SqlAccess (API keys and the audit trail) against real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from surveil.domain import InputError, NewAuditEntry, NotFoundError, hash_api_key
from surveil.storage.access import SqlAccess
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.migrate import upgrade

NEVER = timedelta(days=365)


@pytest.fixture
def access(database_url: str) -> Iterator[SqlAccess]:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield SqlAccess(make_session_factory(engine))
    finally:
        engine.dispose()


def test_created_key_authenticates_and_only_its_hash_is_stored(
    access: SqlAccess, database_url: str
) -> None:
    info, key = access.create_key(name="alice", role="operator")
    assert key.startswith("svk_") and len(key) > 40
    found = access.authenticate(key, touch_after=NEVER)
    assert found is not None and (found.id, found.role, found.name) == (
        info.id,
        "operator",
        "alice",
    )
    engine = make_engine(database_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash, prefix FROM api_keys")).one()
    engine.dispose()
    assert stored[0] == hash_api_key(key) and key not in stored[0]
    assert stored[1] == key[:8]


def test_unknown_and_revoked_keys_do_not_authenticate(access: SqlAccess) -> None:
    info, key = access.create_key(name="bob", role="viewer")
    assert access.authenticate("svk_wrong", touch_after=NEVER) is None
    revoked = access.revoke_key(info.id)
    assert revoked.revoked_at is not None
    assert access.authenticate(key, touch_after=NEVER) is None
    assert access.revoke_key(info.id).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(NotFoundError):
        access.revoke_key(999_999)


def test_last_used_is_written_at_most_once_per_interval(access: SqlAccess) -> None:
    info, key = access.create_key(name="svc", role="viewer")
    first = access.authenticate(key, touch_after=NEVER)
    assert first is not None
    stamped = {k.id: k for k in access.list_keys()}[info.id].last_used_at
    assert stamped is not None
    access.authenticate(key, touch_after=NEVER)
    assert {k.id: k for k in access.list_keys()}[info.id].last_used_at == stamped
    access.authenticate(key, touch_after=timedelta(0))
    assert {k.id: k for k in access.list_keys()}[info.id].last_used_at >= stamped  # type: ignore[operator]


@pytest.mark.parametrize(("name", "role"), [("", "viewer"), ("x", "root"), ("a\nb", "admin")])
def test_bad_key_names_and_roles_are_refused(access: SqlAccess, name: str, role: str) -> None:
    with pytest.raises(InputError):
        access.create_key(name=name, role=role)  # type: ignore[arg-type]


def test_audit_entries_round_trip_and_filter(access: SqlAccess) -> None:
    first = access.record(
        NewAuditEntry(
            action="search",
            key_id=1,
            key_name="alice",
            role="operator",
            query_kind="keyframe_box",
            crop_sha256="ab" * 32,
            crop_path="audit/ab/x.jpg",
            keyframe_id=7,
            box=(1.0, 2.5, 30.0, 40.0),
            filters={"cameras": ["lobby"], "min_score": 0.5},
            result_count=3,
            client="127.0.0.1",
        )
    )
    second = access.record(
        NewAuditEntry(action="key.create", key_id=None, key_name="cli:root", role="cli")
    )
    rows = access.audit_entries()
    assert [r.id for r in rows] == [second, first]  # newest first
    got = access.audit_entry(first).entry
    assert got.box == (1.0, 2.5, 30.0, 40.0) and got.filters == {
        "cameras": ["lobby"],
        "min_score": 0.5,
    }
    assert [r.id for r in access.audit_entries(action="search")] == [first]
    assert [r.id for r in access.audit_entries(key_id=1)] == [first]
    assert access.audit_entries(since=rows[0].ts + timedelta(seconds=1)) == []
    with pytest.raises(NotFoundError):
        access.audit_entry(999_999)
