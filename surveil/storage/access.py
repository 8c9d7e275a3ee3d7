"""`SqlAccess`: API keys and the audit trail, in the catalog database.

Keys are looked up by the SHA-256 of what the caller presents: the database never holds a
usable key, and the lookup is one unique-index probe.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from surveil.domain import (
    ROLES,
    ApiKeyInfo,
    AuditEntry,
    InputError,
    NewAuditEntry,
    NotFoundError,
    Role,
    hash_api_key,
    new_api_key,
)
from surveil.storage.tables import ApiKeyRow, AuditHitRow, AuditRow, utcnow

#: Characters of a key kept in clear for listings ("svk_AbCd…"): enough to tell keys apart.
SHOWN_PREFIX = 8
MAX_NAME = 100


def _key_info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        role=row.role,  # type: ignore[arg-type]  # the CHECK constraint keeps it a Role
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _check_new_key(name: str, role: str) -> None:
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise InputError(f"key name must be 1-{MAX_NAME} printable characters")


class SqlAccess:
    """Key management and the audit trail; each method is one short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # ---- keys --------------------------------------------------------------------------

    def create_key(self, *, name: str, role: Role) -> tuple[ApiKeyInfo, str]:
        """A new key and its plaintext, which is returned here once and never stored."""
        _check_new_key(name, role)
        key = new_api_key()
        row = ApiKeyRow(
            name=name.strip(),
            role=role,
            key_hash=hash_api_key(key),
            prefix=key[:SHOWN_PREFIX],
            created_at=utcnow(),
        )
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            info = _key_info(row)
        return info, key

    def authenticate(self, key: str, *, touch_after: timedelta) -> ApiKeyInfo | None:
        """The live key matching `key`, or None (unknown or revoked).

        last_used_at is written only when older than `touch_after`, so a busy client costs
        one indexed read per request, not a write.
        """
        digest = hash_api_key(key)
        with self._sessions.begin() as session:
            row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)).first()
            if row is None or row.revoked_at is not None:
                return None
            now = utcnow()
            if row.last_used_at is None or now - row.last_used_at >= touch_after:
                row.last_used_at = now
            return _key_info(row)

    def list_keys(self, *, include_revoked: bool = True) -> list[ApiKeyInfo]:
        """Every key, oldest first."""
        stmt = select(ApiKeyRow).order_by(ApiKeyRow.id)
        if not include_revoked:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        with self._sessions() as session:
            return [_key_info(row) for row in session.scalars(stmt)]

    def revoke_key(self, key_id: int) -> ApiKeyInfo:
        """Revoke a key now; revoking twice keeps the first time."""
        with self._sessions.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"no API key with id {key_id} (see `surveil keys list`)")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return _key_info(row)

    # ---- audit -------------------------------------------------------------------------

    def record(self, entry: NewAuditEntry) -> int:
        """Append one audit row; returns its id."""
        values: dict[str, Any] = {
            "ts": utcnow(),
            "key_id": entry.key_id,
            "key_name": entry.key_name,
            "role": entry.role,
            "action": entry.action,
            "status": entry.status,
            "query_kind": entry.query_kind,
            "crop_sha256": entry.crop_sha256,
            "crop_path": entry.crop_path,
            "appearance_id": entry.appearance_id,
            "keyframe_id": entry.keyframe_id,
            "track_id": entry.track_id,
            "box": None if entry.box is None else ",".join(f"{v:g}" for v in entry.box),
            "filters": json.dumps(entry.filters, sort_keys=True, default=str),
            "result_count": entry.result_count,
            "client": entry.client,
            "detail": entry.detail,
        }
        with self._sessions.begin() as session:
            new_id = session.execute(insert(AuditRow).values(**values).returning(AuditRow.id))
            audit_id = int(new_id.scalar_one())
            if entry.hits:
                hits = [
                    {"audit_id": audit_id, "rank": rank, "track_id": track, "score": score}
                    for rank, (track, score) in enumerate(entry.hits, start=1)
                ]
                session.execute(insert(AuditHitRow), hits)
            return audit_id

    def audit_hits(self, entry_id: int) -> list[tuple[int, float]]:
        """The sightings (track id, best score) a search returned, in rank order."""
        stmt = (
            select(AuditHitRow.track_id, AuditHitRow.score)
            .where(AuditHitRow.audit_id == entry_id)
            .order_by(AuditHitRow.rank)
        )
        with self._sessions() as session:
            return [(int(t), float(s)) for t, s in session.execute(stmt).all()]

    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        key_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit rows, newest first."""
        stmt = select(AuditRow).order_by(AuditRow.ts.desc(), AuditRow.id.desc()).limit(limit)
        if since is not None:
            stmt = stmt.where(AuditRow.ts >= since)
        if until is not None:
            stmt = stmt.where(AuditRow.ts <= until)
        if action is not None:
            stmt = stmt.where(AuditRow.action == action)
        if key_id is not None:
            stmt = stmt.where(AuditRow.key_id == key_id)
        with self._sessions() as session:
            return [_audit_entry(row) for row in session.scalars(stmt)]

    def audit_entry(self, entry_id: int) -> AuditEntry:
        """One audit row by id."""
        with self._sessions() as session:
            row = session.get(AuditRow, entry_id)
            if row is None:
                raise NotFoundError(f"no audit entry with id {entry_id}")
            return _audit_entry(row)


def _parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    x1, y1, x2, y2 = (float(v) for v in text.split(","))
    return (x1, y1, x2, y2)


def _audit_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        ts=row.ts,
        entry=NewAuditEntry(
            action=row.action,
            key_id=row.key_id,
            key_name=row.key_name,
            role=row.role,
            status=row.status,
            query_kind=row.query_kind,
            crop_sha256=row.crop_sha256,
            crop_path=row.crop_path,
            appearance_id=row.appearance_id,
            keyframe_id=row.keyframe_id,
            track_id=row.track_id,
            box=_parse_box(row.box),
            filters=json.loads(row.filters),
            result_count=row.result_count,
            client=row.client,
            detail=row.detail,
        ),
    )
