"""A model change on a real catalog: refused until `index reembed`, which is resumable and
finds the same identities afterwards (a copy of the API world, on SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_world import ApiWorld, world_settings
from conftest import services_for
from sqlalchemy import func, select
from world_copy import copy_world

from surveil.alerts.model import RuleSpec
from surveil.alerts.rules import ExampleImage
from surveil.config import Settings
from surveil.container import Services
from surveil.domain import ModelMismatchError, SearchFilters
from surveil.index.reembed import ReembedOptions
from surveil.jobs.alerting import dry_run_rule, evaluate_rule
from surveil.storage.reembed import SwapIncompleteError
from surveil.storage.tables import AppearanceRow, ReembedVectorRow, TrackRow
from surveil.vision.crops import decode_image

#: The same OSNet network under another file name: another model id, real vectors.
NEW_MODEL = "osnet_site_v2.onnx"


class KilledError(Exception):
    """Raised from the progress hook: a re-embed killed after some batches."""


@dataclass
class Copy:
    """A writable copy of the API world and the settings of its old and new person model."""

    old: Settings
    new: Settings
    example: bytes


@pytest.fixture
def world_copy(api_world: ApiWorld, database_url: str, tmp_path: Path) -> Copy:
    copy_world(api_world.services, database_url, tmp_path / "data")
    models = api_world.settings.models_path
    shutil.copy(models / "osnet_x0_25_msmt17.onnx", tmp_path / NEW_MODEL)
    old = world_settings(tmp_path, database_url, models)
    new = world_settings(
        tmp_path, database_url, models, **{"embedders.person.weights": str(tmp_path / NEW_MODEL)}
    )
    with services_for(old) as services:
        services.rebuild_index()
    return Copy(old, new, api_world.example_crop.read_bytes())


@pytest.fixture
def old_services(world_copy: Copy) -> Iterator[Services]:
    with services_for(world_copy.old) as services:
        yield services


def _found(services: Services, crop: bytes) -> list[int]:
    """Track ids a person search by the example crop finds, best first."""
    image = decode_image(crop, what="example")
    filters = SearchFilters(min_score=0.5)  # a wide net: the identities, not the cut
    result = services.search().by_image(image, label="person", filters=filters, limit=50)
    ranked = sorted(result.sightings, key=lambda s: -s.best_score)
    return [s.track_id for s in ranked if s.track_id is not None]


def world_copy_old_model(copy: Copy) -> str:
    """The model id the copied world's person vectors were made with."""
    with services_for(copy.old) as services:
        return services.embedder("person").model_id


def _person_models(services: Services) -> set[str]:
    with services.engine.connect() as conn:
        apps = conn.execute(select(AppearanceRow.model_id).where(AppearanceRow.space == "person"))
        tracks = conn.execute(select(TrackRow.model_id).where(TrackRow.space == "person"))
        return {*apps.scalars(), *tracks.scalars()}


def test_a_model_change_is_refused_until_reembed_which_resumes_and_finds_the_same(
    world_copy: Copy, old_services: Services
) -> None:
    before = _found(old_services, world_copy.example)
    assert before, "the example finds nobody on the old model"
    rule = old_services.rules().create(
        RuleSpec(name="suspect", threshold=0.7),
        [ExampleImage(decode_image(world_copy.example, what="example"), world_copy.example)],
        created_by="test",
    )
    old_model = old_services.embedder("person").model_id
    with services_for(world_copy.new) as new:
        new_model = new.embedder("person").model_id
        assert new_model != old_model
        # Without reembed: search and rule evaluation refuse, naming the command.
        with pytest.raises(ModelMismatchError, match="surveil index reembed --space person"):
            _found(new, world_copy.example)
        with pytest.raises(ModelMismatchError, match="surveil index reembed --space person"):
            evaluate_rule(new.alerts, rule.id, batch=100, check=new.check_rule_models)

        # Killed after two batches: the work done is kept aside, the catalog untouched.
        batches: list[int] = []

        def killed(n: int) -> None:
            batches.append(n)
            if len(batches) == 2:
                raise KilledError

        total = new.reembedder().todo("person")
        with pytest.raises(KilledError):
            new.reembedder().run("person", ReembedOptions(batch=16), progress=killed)
        with new.engine.connect() as conn:
            kept = conn.execute(select(func.count()).select_from(ReembedVectorRow)).scalar_one()
        assert kept == 32
        assert _person_models(new) == {old_model}
        # Mid re-embed, searches keep answering with the old model on the old index.
        assert _found(new, world_copy.example) == before

        report = new.reembedder().run("person", ReembedOptions(batch=16))
        assert report.swapped and report.missing == 0
        assert report.embedded == total - kept, "the second run redid or skipped work"
        assert report.appearances == total
        assert report.examples == 1
        assert _person_models(new) == {new_model}
        after = _found(new, world_copy.example)
        since = datetime(2026, 3, 1, tzinfo=UTC)  # the world's footage, all of it
        tried = dry_run_rule(
            new.alerts, rule.id, since=since, batch=100, check=new.check_rule_models
        )
    assert tried.hits > 0, "the re-embedded rule example no longer matches its own person"
    assert after[0] == before[0], "the best match changed identity"
    overlap = len(set(after) & set(before)) / len(set(after) | set(before))
    assert overlap >= 0.8, f"only {overlap:.0%} of the identities found again"


def test_ingest_of_another_model_into_a_space_is_refused(
    world_copy: Copy, old_services: Services
) -> None:
    import numpy as np

    from surveil.domain import NewAppearance, NewKeyframe

    ts = datetime(2026, 3, 2, tzinfo=UTC)
    source = old_services.catalog.open_source(
        camera_id="lobby", uri="x", fingerprint="f", start=ts, fps=25.0
    )
    app = NewAppearance(
        bbox=(0, 0, 10, 20),
        label="person",
        confidence=0.9,
        space="person",
        embedding=np.ones(512, np.float32) / np.sqrt(512),
        model_id="another-model@0",
        crop_path="crops/none.jpg",
    )
    kf = NewKeyframe("lobby", source.id, 0, ts, 64, 64, None, (app,))
    with pytest.raises(ModelMismatchError, match="surveil index reembed --space person"):
        old_services.catalog.add_keyframes([kf])


def test_with_since_older_appearances_block_the_swap_and_the_work_is_kept(
    world_copy: Copy,
) -> None:
    with services_for(world_copy.new) as new:
        with new.engine.connect() as conn:
            newest = conn.execute(
                select(func.max(AppearanceRow.ts)).where(AppearanceRow.space == "person")
            ).scalar_one()
        options = ReembedOptions(batch=64, since=newest - timedelta(seconds=1))
        with pytest.raises(SwapIncompleteError, match="without --since"):
            new.reembedder().run("person", options)
        with new.engine.connect() as conn:
            kept = conn.execute(select(func.count()).select_from(ReembedVectorRow)).scalar_one()
        assert kept > 0
        assert _person_models(new) == {world_copy_old_model(world_copy)}
        # The space stays on the old model, and searches keep using it.
        assert _found(new, world_copy.example)


def test_reembed_help_documents_the_command() -> None:
    """The issue's Contract: `surveil index reembed --help` documents the command."""
    from typer.testing import CliRunner

    from surveil.cli import app

    result = CliRunner().invoke(app, ["index", "reembed", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for option in ("--space", "--since", "--batch", "--drop-missing", "--json"):
        assert option in text
    assert "Re-embed the stored crops with the configured embedder" in text
    assert "continues where it stopped" in text


def test_reembed_refuses_an_unknown_space() -> None:
    from typer.testing import CliRunner

    from surveil.cli import app

    result = CliRunner().invoke(app, ["index", "reembed", "--space", "vehicle"])
    assert result.exit_code == 2
    assert "unknown space 'vehicle'" in " ".join(result.output.split())


def test_a_missing_crop_stops_the_swap_until_dropped(world_copy: Copy) -> None:
    """A crop that cannot be re-embedded is reported, not skipped; --drop-missing deletes it."""
    with services_for(world_copy.new) as new:
        with new.engine.connect() as conn:
            lost_id, crop = conn.execute(
                select(AppearanceRow.id, AppearanceRow.crop_path)
                .where(AppearanceRow.space == "person")
                .order_by(AppearanceRow.id.desc())
                .limit(1)
            ).one()
        assert new.blobs.delete(crop)
        with pytest.raises(SwapIncompleteError, match=rf"1 appearances .*first ids: {lost_id}\)"):
            new.reembedder().run("person", ReembedOptions(batch=128))
        assert _person_models(new) == {world_copy_old_model(world_copy)}

        report = new.reembedder().run("person", ReembedOptions(batch=128, drop_missing=True))
        assert report.swapped and report.dropped == 1 and report.embedded == 0
        assert report.missing_ids == [lost_id]
        assert new.catalog.appearances([lost_id]) == []
        assert _person_models(new) == {new.embedder("person").model_id}
        assert _found(new, world_copy.example)
