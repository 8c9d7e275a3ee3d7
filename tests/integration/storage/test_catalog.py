"""SqlCatalog against real SQLite and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import func, select

from surveil.domain import InputError, NewAppearance, NewKeyframe, SearchFilters, Space
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.migrate import upgrade
from surveil.storage.repositories import SqlCatalog
from surveil.storage.tables import AppearanceRow, KeyframeRow

T0 = datetime(2024, 5, 1, 23, 59, 58, 123456, tzinfo=UTC)
RNG = np.random.default_rng(7)


@pytest.fixture
def catalog(database_url: str) -> Iterator[SqlCatalog]:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield SqlCatalog(make_session_factory(engine))
    finally:
        engine.dispose()


def _app(label: str = "person", space: Space = "person", dim: int = 8) -> NewAppearance:
    vec = RNG.standard_normal(dim).astype(np.float32)
    return NewAppearance(
        bbox=(1.5, 2.25, 30.0, 60.75),
        label=label,
        confidence=0.875,
        space=space,
        embedding=vec / np.linalg.norm(vec),
        model_id="osnet@1",
        crop_path=f"crops/{label}.jpg",
    )


def _kf(source_id: int, index: int, *apps: NewAppearance, camera: str = "cam1") -> NewKeyframe:
    return NewKeyframe(
        camera_id=camera,
        source_id=source_id,
        frame_index=index,
        ts=T0 + timedelta(seconds=index),
        width=640,
        height=480,
        image_path=f"keyframes/{index}.jpg",
        appearances=apps,
    )


def _source(catalog: SqlCatalog, camera: str = "cam1", fingerprint: str = "fp") -> int:
    return catalog.open_source(
        camera_id=camera, uri=f"file:///{camera}.mp4", fingerprint=fingerprint, start=T0, fps=25.0
    ).id


def _count(catalog: SqlCatalog, model: type[KeyframeRow] | type[AppearanceRow]) -> int:
    with catalog._sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_cameras_are_idempotent(catalog: SqlCatalog) -> None:
    catalog.ensure_camera("b")
    catalog.ensure_camera("a")
    catalog.ensure_camera("b")
    assert catalog.camera_ids() == ["a", "b"]


def test_add_keyframes_round_trip(catalog: SqlCatalog) -> None:
    src = _source(catalog)
    a1, a2, a3 = _app(), _app("car", "general", 16), _app()
    ids = catalog.add_keyframes([_kf(src, 0, a1, a2), _kf(src, 5), _kf(src, 9, a3)])
    assert [len(x) for x in ids] == [2, 0, 1]
    flat = [i for group in ids for i in group]
    assert flat == sorted(flat) and len(set(flat)) == 3

    stored = catalog.appearances(list(reversed(flat)))
    assert [s.id for s in stored] == list(reversed(flat))  # order of the ids asked
    first = catalog.appearances([flat[0]])[0]
    assert first.ts == T0 and first.ts.tzinfo is not None and first.ts.utcoffset() == timedelta(0)
    assert first.bbox == (1.5, 2.25, 30.0, 60.75)
    assert (first.label, first.space, first.model_id) == ("person", "person", "osnet@1")
    assert first.confidence == 0.875 and first.frame_index == 0 and first.camera_id == "cam1"

    space, vec = catalog.appearance_embedding(flat[1])
    assert space == "general" and vec.dtype == np.float32
    assert vec.tobytes() == a2.embedding.astype("<f4").tobytes()

    kf = catalog.get_keyframe(keyframe_id=first.keyframe_id)
    assert kf is not None and kf.ts == T0 and kf.image_path == "keyframes/0.jpg"
    assert [a.id for a in catalog.keyframe_appearances(keyframe_id=kf.id)] == flat[:2]
    assert catalog.count_appearances() == 3
    assert catalog.count_appearances("person") == 2
    assert catalog.add_keyframes([]) == []


def test_missing_appearance_is_an_input_error(catalog: SqlCatalog) -> None:
    with pytest.raises(InputError, match="no appearance with id 424242"):
        catalog.appearance_embedding(424242)
    assert catalog.appearances([424242]) == []
    assert catalog.get_keyframe(keyframe_id=1) is None


def test_failing_batch_leaves_nothing(catalog: SqlCatalog) -> None:
    src = _source(catalog)
    catalog.add_keyframes([_kf(src, 0, _app())])
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        catalog.add_keyframes([_kf(src, 1, _app()), _kf(src, 2, _app()), _kf(src, 1, _app())])
    assert _count(catalog, KeyframeRow) == 1
    assert _count(catalog, AppearanceRow) == 1
    # A keyframe for a source that does not exist fails on the foreign key, atomically too.
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        catalog.add_keyframes([_kf(src, 3, _app()), _kf(src + 99, 0, _app())])
    assert _count(catalog, AppearanceRow) == 1


def test_filters(catalog: SqlCatalog) -> None:
    s1, s2 = _source(catalog, "cam1"), _source(catalog, "cam2")
    ids = catalog.add_keyframes(
        [
            _kf(s1, 0, _app("person"), _app("car", "general")),
            _kf(s1, 10, _app("person")),
            _kf(s2, 20, _app("bag", "general"), camera="cam2"),
        ]
    )
    every = [i for group in ids for i in group]

    def pick(**kw: object) -> list[int]:
        return [a.id for a in catalog.appearances(every, filters=SearchFilters(**kw))]  # type: ignore[arg-type]

    assert pick() == every
    assert pick(cameras=frozenset({"cam2"})) == ids[2]
    assert pick(labels=frozenset({"person", "bag"})) == [ids[0][0], ids[1][0], ids[2][0]]
    # since/until are inclusive at both ends.
    assert pick(since=T0 + timedelta(seconds=10)) == ids[1] + ids[2]
    assert pick(until=T0 + timedelta(seconds=10)) == ids[0] + ids[1]
    window = {"since": T0 + timedelta(seconds=10), "until": T0 + timedelta(seconds=10)}
    assert pick(**window) == ids[1]
    assert pick(cameras=frozenset({"cam1"}), labels=frozenset({"car"})) == [ids[0][1]]


def test_large_id_lists_are_chunked(catalog: SqlCatalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("surveil.storage.repositories.ID_CHUNK", 700)
    src = _source(catalog)
    batch = [_kf(src, i, *[_app(dim=4) for _ in range(10)]) for i in range(300)]
    ids = [i for group in catalog.add_keyframes(batch) for i in group]
    asked = ids + list(range(10**9, 10**9 + 2000))  # 5,000 ids, most of them unknown
    assert [a.id for a in catalog.appearances(asked)] == ids


def test_open_source_resume_semantics(catalog: SqlCatalog) -> None:
    first = catalog.open_source(
        camera_id="cam9", uri="file:///a.mp4", fingerprint="abc", start=T0, fps=25.0
    )
    assert (first.complete, first.last_frame_index) == (False, None)
    assert "cam9" in catalog.camera_ids()  # the camera is registered on the way
    catalog.add_keyframes([_kf(first.id, 3, camera="cam9"), _kf(first.id, 42, camera="cam9")])

    again = catalog.open_source(
        camera_id="cam9", uri="file:///moved.mp4", fingerprint="abc", start=T0, fps=25.0
    )
    assert again.id == first.id and again.uri == "file:///a.mp4"
    assert (again.complete, again.last_frame_index) == (False, 42)

    catalog.finish_source(source_id=first.id, frames_read=100)
    done = catalog.get_source(source_id=first.id)
    assert done is not None and done.complete and done.last_frame_index == 42

    other = catalog.open_source(
        camera_id="cam9", uri="file:///b.mp4", fingerprint="other", start=T0, fps=25.0
    )
    assert other.id != first.id and not other.complete
    with pytest.raises(InputError, match="no source with id"):
        catalog.finish_source(source_id=10**9, frames_read=1)


def test_iter_vectors_batches_in_id_order(catalog: SqlCatalog) -> None:
    src = _source(catalog)
    apps = [_app(dim=8) for _ in range(25)]
    ids = catalog.add_keyframes([_kf(src, i, *apps[i * 5 : i * 5 + 5]) for i in range(5)])
    ids_flat = [i for group in ids for i in group]
    catalog.add_keyframes([_kf(src, 100, _app("car", "general", 16))])

    batches = list(catalog.iter_vectors("person", batch_size=10))
    assert [len(b.ids) for b in batches] == [10, 10, 5]
    got = np.concatenate([b.ids for b in batches])
    assert got.dtype == np.int64 and got.tolist() == ids_flat
    matrix = np.vstack([b.vectors for b in batches])
    assert matrix.dtype == np.float32 and matrix.shape == (25, 8)
    np.testing.assert_array_equal(matrix, np.stack([a.embedding for a in apps]))
    days = [d for b in batches for d in b.days]
    # T0 is 23:59:58 UTC: frame 0 and 1 fall on May 1, later ones on May 2.
    assert days[:5] == [date(2024, 5, 1)] * 5 and days[-1] == date(2024, 5, 2)

    subset = list(catalog.iter_vectors("person", ids=[ids_flat[7], ids_flat[2], 10**9]))
    assert len(subset) == 1 and subset[0].ids.tolist() == [ids_flat[2], ids_flat[7]]
    assert list(catalog.iter_vectors("general", ids=[ids_flat[0]])) == []


def test_ids_by_day(catalog: SqlCatalog) -> None:
    src = _source(catalog)
    ids = catalog.add_keyframes([_kf(src, i, _app()) for i in range(4)])
    by_day = catalog.ids_by_day("person")
    assert list(by_day) == [date(2024, 5, 1), date(2024, 5, 2)]
    assert by_day[date(2024, 5, 1)].tolist() == [ids[0][0], ids[1][0]]
    assert by_day[date(2024, 5, 2)].dtype == np.int64
    assert catalog.ids_by_day("general") == {}


def test_counts_by_day_match_the_rows_near_utc_midnight(catalog: SqlCatalog) -> None:
    src = _source(catalog)
    # T0 is 23:59:58.123456 UTC; offsets straddle two midnights and one exact midnight.
    offsets = [0, 1, 2, 3, 60, 86_400 - 1, 86_400 + 1, 86_400 + 2]
    stamps = [T0 + timedelta(seconds=s) for s in offsets]
    frames = [
        NewKeyframe("cam1", src, i, ts, 640, 480, None, (_app(), _app()) if i % 2 else (_app(),))
        for i, ts in enumerate(stamps)
    ]
    frames.append(_kf(src, 99, _app("car", "general")))
    frames.append(  # exactly midnight UTC, given in another zone: belongs to May 3
        NewKeyframe(
            "cam1",
            src,
            100,
            datetime(2024, 5, 3, 2, tzinfo=timezone(timedelta(hours=2))),
            640,
            480,
            None,
            (_app(),),
        )
    )
    catalog.add_keyframes(frames)
    expected: dict[date, int] = {}
    for kf in frames:
        for app in kf.appearances:
            if app.space == "person":
                day = kf.ts.astimezone(UTC).date()
                expected[day] = expected.get(day, 0) + 1

    counts = catalog.counts_by_day("person")

    assert counts == expected
    assert list(counts) == sorted(counts)
    assert counts == {date(2024, 5, 1): 3, date(2024, 5, 2): 7, date(2024, 5, 3): 3}
    assert {d: len(ids) for d, ids in catalog.ids_by_day("person").items()} == counts
    assert catalog.counts_by_day("general") == {date(2024, 5, 2): 1}


def test_ids_by_day_can_list_chosen_days_only(catalog: SqlCatalog) -> None:
    src = _source(catalog)
    ids = catalog.add_keyframes([_kf(src, i, _app()) for i in (0, 1, 2, 86_402)])
    may2 = catalog.ids_by_day("person", days=[date(2024, 5, 2)])
    assert list(may2) == [date(2024, 5, 2)] and may2[date(2024, 5, 2)].tolist() == [ids[2][0]]
    both = catalog.ids_by_day("person", days={date(2024, 5, 1), date(2024, 5, 3), date(2030, 1, 1)})
    assert {d: v.tolist() for d, v in both.items()} == {
        date(2024, 5, 1): [ids[0][0], ids[1][0]],
        date(2024, 5, 3): [ids[3][0]],
    }
    assert catalog.ids_by_day("person", days=[]) == {}


def test_stats_per_camera(catalog: SqlCatalog) -> None:
    src = _source(catalog, "cam1")
    catalog.ensure_camera("idle")
    catalog.add_keyframes([_kf(src, 0, _app(), _app()), _kf(src, 4, _app())])
    stats = {s.camera_id: s for s in catalog.stats()}
    assert (stats["cam1"].sources, stats["cam1"].keyframes, stats["cam1"].appearances) == (1, 2, 3)
    assert stats["cam1"].first_ts == T0 and stats["cam1"].last_ts == T0 + timedelta(seconds=4)
    assert (stats["idle"].appearances, stats["idle"].first_ts) == (0, None)
