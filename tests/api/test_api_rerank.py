"""Re-ranking switched per request (API form, CLI flag) and by setting, on the API world."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_world import ApiWorld
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from surveil.cli import app
from surveil.search.service import SearchService

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _search(client: TestClient, world: ApiWorld, **form: str) -> Any:
    response = client.post("/api/v1/search", headers=world.auth("operator"), data=form)
    assert response.status_code == 200, response.text
    return response


def _tracks(body: dict[str, Any]) -> list[int]:
    return sorted(s["track_id"] for s in body["sightings"])


def _stage_ms(response: Any, stage: str) -> float:
    entries = dict(e.strip().split(";dur=") for e in response.headers["server-timing"].split(","))
    return float(entries[stage])


def test_rerank_changes_order_not_the_set_above_min_score(
    client: TestClient, api_world: ApiWorld
) -> None:
    """Nothing cut at the limit: the same tracks with the same cosine scores either way."""
    form = {"appearance_id": str(api_world.example.id), "limit": "500", "min_score": "0.5"}
    off = _search(client, api_world, **form, rerank="false")
    on = _search(client, api_world, **form, rerank="true")
    off_body, on_body = off.json(), on.json()
    assert not off_body["truncated"] and not on_body["truncated"]
    assert len(off_body["sightings"]) >= 3  # enough candidates for a neighbour graph
    assert on_body == off_body  # sightings by time, cosine scores: identical
    assert _stage_ms(on, "rerank") > 0 and _stage_ms(off, "rerank") == 0
    entry = api_world.services.access.audit_entries(action="search", limit=1)[0]
    assert entry.entry.filters.get("rerank") is True  # the trail says how it was ranked


def test_a_cut_at_the_limit_keeps_the_best_after_re_ranking(
    client: TestClient, api_world: ApiWorld
) -> None:
    """With a limit the re-ranked search returns tracks from the same matched set."""
    base = {"appearance_id": str(api_world.example.id), "min_score": "0.5"}
    whole = set(_tracks(_search(client, api_world, **base, limit="500").json()))
    cut = _search(client, api_world, **base, limit="2", rerank="true").json()
    assert cut["truncated_reason"] == "limit" and len(cut["sightings"]) == 2
    assert set(_tracks(cut)) <= whole
    # The query's own track is its own best reciprocal neighbour: it stays in.
    assert api_world.example.track_id in _tracks(cut)


def test_the_setting_turns_it_on_and_a_request_turns_it_off(api_world: ApiWorld) -> None:
    services = api_world.services
    on = services.settings.search.model_copy(
        update={
            "rerank": services.settings.search.rerank.model_copy(update={"mode": "k_reciprocal"})
        }
    )
    search = SearchService(
        index=services.index,
        catalog=services.catalog,
        blobs=services.blobs,
        embedder_for=services.embedder,
        detector=services.detector,
        settings=on,
        person_labels=services.settings.embedders.person_labels,
    )
    by_setting = search.by_appearance(api_world.example.id, limit=500)
    asked_off = search.by_appearance(api_world.example.id, limit=500, rerank=False)
    assert by_setting.timings.rerank > 0 and asked_off.timings.rerank == 0
    assert [s.track_id for s in by_setting.sightings] == [s.track_id for s in asked_off.sightings]


def test_cli_rerank_flag(api_world: ApiWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = api_world.settings
    assert settings.database.url is not None and settings.model_dir is not None
    monkeypatch.setenv("SURVEIL_STORAGE__ROOT", str(settings.storage.root))
    monkeypatch.setenv("SURVEIL_DATABASE__URL", settings.database.url)
    monkeypatch.setenv("SURVEIL_MODEL_DIR", str(settings.model_dir))
    monkeypatch.setenv("SURVEIL_DETECTOR__WEIGHTS", str(settings.detector.weights))
    args = ["search", "--appearance", str(api_world.example.id), "--min-score", "0.5", "--json"]
    runs = {flag: CliRunner().invoke(app, [*args, flag]) for flag in ("--rerank", "--no-rerank")}
    for result in runs.values():
        assert result.exit_code == 0, result.output
    on, off = (json.loads(runs[f].stdout) for f in ("--rerank", "--no-rerank"))
    assert on == off and on["sightings"]
    entries = api_world.services.access.audit_entries(action="search", limit=2)
    assert [e.entry.filters.get("rerank") for e in entries] == [False, True]  # newest first
    help_text = CliRunner().invoke(app, ["search", "--help"]).stdout
    assert "--rerank" in help_text and "--no-rerank" in help_text
