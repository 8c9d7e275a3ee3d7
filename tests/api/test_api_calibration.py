"""Calibration from feedback over HTTP: a rule with known labelled hits, a space's floor.

Appearances with chosen cosines to the rule's one example go in through the catalog's
write path (no model runs), so the expected threshold is known exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from synthetic import TARGET, make_rule, near, store_persons

from surveil.api.app import create_app
from surveil.config import load_settings
from surveil.container import Services, build_services
from surveil.domain import FeedbackTarget
from surveil.jobs.alerting import evaluate_rule
from surveil.search.audited import Actor
from surveil.storage.migrate import upgrade

#: Confirmed hits (the rule's person) and rejected ones (strangers), as cosines to the example.
CONFIRMED = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7]
REJECTED = [0.72, 0.66, 0.6, 0.55, 0.4]


@dataclass
class World:
    services: Services
    client: TestClient
    keys: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    upgrade(database_url)
    settings = load_settings(
        overrides={
            "storage.root": str(tmp_path / "data"),
            "database.url": database_url,
            "api.console": False,
        }
    )
    services = build_services(settings)
    keys = {r: services.access.create_key(name=f"t-{r}", role=r)[1] for r in ("operator", "admin")}
    try:
        # No lifespan (models are not loaded): nothing here embeds or detects.
        yield World(services, TestClient(create_app(services), raise_server_exceptions=False), keys)
    finally:
        services.close()


def _calibrate(world: World, path: str, role: str = "operator", **query: str) -> dict[str, object]:
    response = world.client.post(
        path,
        params=query,
        json={"precision": float(query.pop("p", "1.0"))},
        headers=world.auth(role),
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_rule_calibration_proposes_the_expected_threshold_and_applies_only_when_asked(
    world: World,
) -> None:
    s = world.services
    rule_id = make_rule(s)  # threshold 0.8
    scores = CONFIRMED + REJECTED
    # 100 s apart: beyond the rule's cooldown, so each hit over 0.8 is an alert of its own.
    ids = store_persons(s, "gate", [(100 * i, near(TARGET, sc, i)) for i, sc in enumerate(scores)])
    assert evaluate_rule(s.alerts, rule_id, batch=100).new_alerts == 4
    alerts = {a.appearance_id: a.id for a in s.alerts.list_alerts(rule_id=rule_id)}
    tracks = {a.id: a.track_id for a in s.catalog.appearances(ids)}
    path = f"/api/v1/rules/{rule_id}/calibration"

    # Alerts are labelled over HTTP; hits under the threshold are marked for the rule.
    for app_id in list(alerts)[:2]:
        r = world.client.put(
            f"/api/v1/alerts/{alerts[app_id]}/feedback",
            json={"verdict": "confirmed"},
            headers=world.auth("operator"),
        )
        assert r.status_code == 200, r.text
        # The alert's hit is its sighting (track).
        assert (r.json()["rule_id"], r.json()["track_id"]) == (rule_id, tracks[app_id])
    few = _calibrate(world, path)
    assert few["enough_labels"] is False and few["threshold"] is None
    assert few["needed"] == {"confirmed": 3, "rejected": 5}

    actor = Actor(key_id=None, name="cli:test", role="cli")
    for app_id, score in zip(ids, scores, strict=True):
        verdict = "confirmed" if score in CONFIRMED else "rejected"
        target = FeedbackTarget(rule_id=rule_id, track_id=tracks[app_id])
        marked = s.feedback().mark(actor, target, verdict)  # type: ignore[arg-type]
        assert marked.score == pytest.approx(score, abs=1e-5)  # scored as the rule scores

    exact = _calibrate(world, path)
    assert exact["threshold"] == pytest.approx(0.75, abs=2e-4)  # 0.72 is a false alarm
    assert exact["recall"] == pytest.approx(5 / 6) and exact["applied"] is False
    missed = exact["missed"]
    assert isinstance(missed, list) and [h["score"] for h in missed] == [
        pytest.approx(0.7, abs=1e-4)
    ]
    assert s.alerts.get_rule(rule_id).spec.threshold == 0.8  # proposed, not applied

    looser = _calibrate(world, path, p="0.85", apply="true")
    assert looser["threshold"] == pytest.approx(0.7, abs=2e-4) and looser["applied"] is True
    assert s.alerts.get_rule(rule_id).spec.threshold == looser["threshold"]
    trail = s.access.audit_entries(action="rule_calibrate")
    assert [e.entry.filters["rule_id"] for e in trail] == [rule_id]
    assert len(s.feedback().listing(rule_id=rule_id)) == len(scores)  # re-marks replaced
    assert len(s.access.audit_entries(action="feedback")) == len(scores) + 2  # all kept

    # The same verdicts give the person space's default min_score (admins only).
    assert (
        world.client.post(
            "/api/v1/spaces/person/calibration", json={}, headers=world.auth("operator")
        ).status_code
        == 403
    )
    before = s.search().default_floor("person")
    floor = _calibrate(world, "/api/v1/spaces/person/calibration", "admin", apply="true")
    assert floor["current"] == pytest.approx(before) and floor["applied"] is True
    assert s.search().default_floor("person") == floor["threshold"]
    assert floor["threshold"] == pytest.approx(0.75, abs=2e-4)
