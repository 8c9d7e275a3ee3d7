"""Alembic migrations on both back-ends: they run, repeat safely and match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from surveil.domain import ConfigError
from surveil.storage.db import check_connection, make_engine
from surveil.storage.migrate import current_revision, head_revision, require_current, upgrade
from surveil.storage.tables import metadata


def test_upgrade_to_head_creates_tables(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        require_current(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"cameras", "sources", "keyframes", "appearances", "api_keys", "audit_log"} <= tables
        assert {"alert_rules", "alerts", "alert_deliveries", "job_state"} <= tables
    finally:
        engine.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
        assert diff == [], f"tables.py and migrations differ: {diff}"
    finally:
        engine.dispose()


def test_require_current_refuses_an_empty_database(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with pytest.raises(ConfigError, match=r"not migrated \(at nothing, need 0012\)") as info:
            require_current(engine)
        assert "surveil db upgrade" in str(info.value)
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_unreachable_database_names_the_url_without_password() -> None:
    engine = make_engine("postgresql+psycopg://someone:s3cret@127.0.0.1:1/nowhere")
    try:
        with pytest.raises(ConfigError) as info:
            check_connection(engine)
    finally:
        engine.dispose()
    message = str(info.value)
    assert "127.0.0.1:1/nowhere" in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_0001_catalog_upgrades_to_head_keeping_its_rows(database_url: str) -> None:
    """A first-release catalog gains keys, audit, URLs, holds and rules, its data intact."""
    from sqlalchemy import text

    upgrade(database_url, "0001")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO cameras (id, name, enabled, created_at) VALUES (:i, :n, :e, :t)"),
                {"i": "lobby", "n": "Lobby", "e": True, "t": "2026-01-01 00:00:00+00:00"},
            )
        upgrade(database_url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT id, name, url, legal_hold FROM cameras")).one()
        assert tuple(row) == ("lobby", "Lobby", None, False)
        assert current_revision(engine) == head_revision() == "0012"
    finally:
        engine.dispose()


def test_0004_catalog_upgrades_to_tracks_of_one_with_the_same_ids(database_url: str) -> None:
    """Stored appearances become one-member tracks whose ids and vectors are theirs.

    The index on disk holds appearance ids; with track id = appearance id it stays valid.
    """
    import numpy as np
    from sqlalchemy import text

    upgrade(database_url, "0004")
    engine = make_engine(database_url)
    vec = np.array([0.6, 0.8], dtype="<f4").tobytes()
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO cameras (id, name, enabled, created_at) VALUES ('c', 'c', :e, :t)"
                ),
                {"e": True, "t": "2026-01-01 00:00:00+00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO sources (id, camera_id, uri, fingerprint, start_ts, fps,"
                    " frames_read, complete, created_at, updated_at)"
                    " VALUES (1, 'c', 'u', 'f', :t, 10, 0, :e, :t, :t)"
                ),
                {"e": False, "t": "2026-01-01 00:00:00+00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO keyframes (id, camera_id, source_id, frame_index, ts, width,"
                    " height) VALUES (1, 'c', 1, 0, :t, 10, 10)"
                ),
                {"t": "2026-01-01 08:00:00+00:00"},
            )
            for app_id in (7, 9):
                conn.execute(
                    text(
                        "INSERT INTO appearances (id, keyframe_id, camera_id, ts, frame_index,"
                        " label, confidence, x1, y1, x2, y2, space, model_id, crop_path,"
                        " embedding, dim, legal_hold) VALUES (:i, 1, 'c', :t, 0, 'person', 0.8,"
                        " 0, 0, 5, 5, 'person', 'm', 'p', :v, 2, :h)"
                    ),
                    {"i": app_id, "t": "2026-01-01 08:00:00+00:00", "v": vec, "h": False},
                )
        upgrade(database_url)
        with engine.connect() as conn:
            tracks = conn.execute(
                text("SELECT id, key, appearances, embedding, best_appearance_id FROM tracks")
            ).all()
            members = conn.execute(text("SELECT id, track_id FROM appearances ORDER BY id")).all()
        assert sorted((t[0], t[1], t[2], bytes(t[3]), t[4]) for t in tracks) == [
            (7, "legacy:7", 1, vec, 7),
            (9, "legacy:9", 1, vec, 9),
        ]
        assert [tuple(m) for m in members] == [(7, 7), (9, 9)]
    finally:
        engine.dispose()


def test_0006_catalog_upgrades_to_camera_leases_keeping_its_cameras(database_url: str) -> None:
    """Cameras of a one-worker catalog gain no tags (any worker reads them) and no lease."""
    from sqlalchemy import text

    upgrade(database_url, "0006")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO cameras (id, name, enabled, created_at, url, legal_hold)"
                    " VALUES ('gate', 'Gate', :e, :t, 'rtsp://cam/1', :h)"
                ),
                {"e": True, "t": "2026-01-01 00:00:00+00:00", "h": True},
            )
        upgrade(database_url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT id, name, url, legal_hold, tags FROM cameras")).one()
            leases = conn.execute(text("SELECT count(*) FROM camera_leases")).scalar_one()
            workers = conn.execute(text("SELECT count(*) FROM live_workers")).scalar_one()
        assert tuple(row) == ("gate", "Gate", "rtsp://cam/1", True, "")
        assert (leases, workers) == (0, 0)
    finally:
        engine.dispose()


def test_0007_catalog_upgrades_to_feedback_keeping_its_audit_trail(database_url: str) -> None:
    """Feedback arrives empty beside an existing trail; one verdict per (query, hit)."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    upgrade(database_url, "0007")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_log (ts, key_name, role, action, status, filters)"
                    " VALUES (:t, 'cli:op', 'cli', 'search', 'ok', '{}')"
                ),
                {"t": "2026-01-01 00:00:00+00:00"},
            )
        upgrade(database_url)
        row = (
            "(ts, key_name, query_key, hit_key, space, verdict)"
            " VALUES (:t, 'op', 'search:1', 'track:2', 'person', :v)"
        )
        with engine.connect() as conn:
            trail = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
            empty = conn.execute(text("SELECT count(*) FROM feedback")).scalar_one()
        assert (trail, empty) == (1, 0)
        with engine.begin() as conn:
            conn.execute(
                text(f"INSERT INTO feedback {row}"),
                {"t": "2026-01-02 00:00:00+00:00", "v": "confirmed"},
            )
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                text(f"INSERT INTO feedback {row}"),
                {"t": "2026-01-02 00:00:00+00:00", "v": "rejected"},
            )
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                text(f"INSERT INTO feedback {row.replace('track:2', 'track:3')}"),
                {"t": "2026-01-02 00:00:00+00:00", "v": "maybe"},
            )
    finally:
        engine.dispose()


def test_0007_catalog_upgrades_to_space_models_from_its_newest_tracks(database_url: str) -> None:
    """Each space keeps the model of its newest track: searches go on, a changed model is
    refused until `index reembed`."""
    from sqlalchemy import text

    upgrade(database_url, "0007")
    engine = make_engine(database_url)
    insert = text(
        "INSERT INTO tracks (key, camera_id, space, label, label_group, first_ts, last_ts,"
        " appearances, best_quality, embedding, dim, model_id, closed, updated_at)"
        " VALUES (:key, 'gate', :space, 'person', 'persons', :t, :t, 1, 1.0, :e, 2, :model,"
        " :closed, :t)"
    )
    t = "2026-01-01 00:00:00+00:00"
    try:
        with engine.begin() as conn:
            for key, space, model in [
                ("a", "person", "osnet-old@1"),
                ("b", "person", "osnet-new@2"),
                ("c", "general", "mobilenet@3"),
            ]:
                row = {"key": key, "space": space, "model": model, "t": t, "closed": True}
                conn.execute(insert, {**row, "e": b"\0" * 8})
        upgrade(database_url)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT space, model_id, dim, embedder, pending_model_id, index_stale"
                    " FROM space_models ORDER BY space"
                )
            ).all()
            aside = conn.execute(text("SELECT count(*) FROM reembed_vectors")).scalar_one()
        assert [tuple(r) for r in rows] == [
            ("general", "mobilenet@3", 2, None, None, False),
            ("person", "osnet-new@2", 2, None, None, False),
        ]
        assert aside == 0
    finally:
        engine.dispose()


def test_0010_on_an_empty_catalog_records_no_model(database_url: str) -> None:
    """A fresh catalog's first ingest records each space's model, not the migration."""
    from sqlalchemy import text

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM space_models")).scalar_one() == 0
    finally:
        engine.dispose()


def _one_of_each(conn: Connection, t: str, *, sized: bool = False) -> None:
    """A camera, a source, keyframe 7 and appearance 9 without recorded sizes, as a 0010
    catalog holds them; with `sized`, also keyframe 8 and appearance 10 with sizes, as
    ingest writes them from 0011 on."""
    flag = {"t": t, "yes": True}
    conn.execute(
        text(
            "INSERT INTO cameras (id, name, enabled, created_at) VALUES ('gate', 'Gate', :yes, :t)"
        ),
        flag,
    )
    conn.execute(
        text(
            "INSERT INTO sources (id, camera_id, uri, fingerprint, start_ts, fps,"
            " frames_read, complete, created_at, updated_at)"
            " VALUES (1, 'gate', 'a.mp4', 'f', :t, 25, 0, :yes, :t, :t)"
        ),
        flag,
    )
    frame = (
        "INSERT INTO keyframes (id, camera_id, source_id, frame_index, ts, width, height,"
        " image_path{more}) VALUES ({id}, 'gate', 1, {id}, :t, 640, 480, 'k/{id}.jpg'{value})"
    )
    crop = (
        "INSERT INTO appearances (id, keyframe_id, camera_id, ts, frame_index, label,"
        " confidence, x1, y1, x2, y2, space, model_id, crop_path, embedding, dim{more})"
        " VALUES ({id}, {frame}, 'gate', :t, {frame}, 'person', 0.9, 1, 2, 3, 4, 'person',"
        " 'm@1', 'c/{id}.jpg', :e, 2{value})"
    )
    conn.execute(text(frame.format(id=7, more="", value="")), {"t": t})
    conn.execute(text(crop.format(id=9, frame=7, more="", value="")), {"t": t, "e": b"\0" * 8})
    if sized:
        conn.execute(text(frame.format(id=8, more=", image_bytes", value=", 100")), {"t": t})
        sized_crop = crop.format(id=10, frame=8, more=", crop_bytes", value=", 50")
        conn.execute(text(sized_crop), {"t": t, "e": b"\0" * 8})


def test_0010_catalog_upgrades_to_stored_bytes_keeping_rows_unsized(database_url: str) -> None:
    """Existing keyframes and appearances keep every value and get NULL sizes ("not sized
    yet"): the first budget run or estimate sizes them through the blob store."""
    from sqlalchemy import text

    upgrade(database_url, "0010")
    engine = make_engine(database_url)
    t = "2026-01-01 00:00:00+00:00"
    try:
        with engine.begin() as conn:
            _one_of_each(conn, t)
        upgrade(database_url)
        with engine.connect() as conn:
            kf = conn.execute(text("SELECT image_path, image_bytes FROM keyframes")).one()
            app = conn.execute(text("SELECT crop_path, crop_bytes, label FROM appearances")).one()
        assert tuple(kf) == ("k/7.jpg", None)
        assert tuple(app) == ("c/9.jpg", None, "person")
    finally:
        engine.dispose()


def test_0011_catalog_upgrades_to_unsized_indexes_holding_only_unsized_rows(
    database_url: str,
) -> None:
    """0012's partial indexes serve the storage check's "unsized rows" probe: the planner
    takes them for that query, and they find the unsized rows and no sized one."""
    from sqlalchemy.orm import sessionmaker

    from surveil.storage.usage import SqlUsage

    upgrade(database_url, "0011")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            _one_of_each(conn, "2026-01-01 00:00:00+00:00", sized=True)
        upgrade(database_url)
        unsized = SqlUsage(sessionmaker(engine)).unsized(limit=10)
        assert [(u.kind, u.id) for u in unsized] == [("keyframes", 7), ("appearances", 9)]
        probe = "SELECT id FROM appearances WHERE crop_bytes IS NULL ORDER BY id LIMIT 10"
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                plan = conn.execute(text("EXPLAIN QUERY PLAN " + probe)).all()
            else:  # a two-row table is scanned unless told otherwise
                conn.execute(text("SET enable_seqscan = off"))
                plan = conn.execute(text("EXPLAIN " + probe)).all()
        assert "ix_appearances_unsized" in " ".join(str(row) for row in plan)
    finally:
        engine.dispose()
