"""Operator feedback over HTTP on the real ingested world: mark, list, clear, re-run.

A re-run must move results the right way: a confirmed track's own neighbours (found by
an independent search from that track) rank higher or appear, and a rejected track never
comes back while its near-duplicates drop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from api_world import ApiWorld
from fastapi.testclient import TestClient

from surveil.domain import SearchFilters

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FLOOR = "0.3"  # low, so the first search holds many tracks to move around


def _search(client: TestClient, world: ApiWorld) -> tuple[int, dict[int, float]]:
    response = client.post(
        "/api/v1/search",
        headers=world.auth("operator"),
        data={"appearance_id": str(world.example.id), "min_score": FLOOR, "limit": "200"},
    )
    assert response.status_code == 200, response.text
    return int(response.headers["x-surveil-audit-id"]), _scores(response.json())


def _scores(body: dict[str, Any]) -> dict[int, float]:
    return {s["track_id"]: s["best_score"] for s in body["sightings"]}


def _rank(scores: dict[int, float]) -> dict[int, int]:
    order = sorted(scores, key=lambda t: (-scores[t], t))
    return {t: i for i, t in enumerate(order)}


def _mark(client: TestClient, world: ApiWorld, audit_id: int, track: int, verdict: str) -> Any:
    response = client.put(
        f"/api/v1/searches/{audit_id}/feedback",
        json={"verdict": verdict, "track_id": track},
        headers=world.auth("operator"),
    )
    assert response.status_code == 200, response.text
    return response.json()


def _rerun(client: TestClient, world: ApiWorld, audit_id: int) -> tuple[int, dict[int, float]]:
    response = client.post(
        f"/api/v1/searches/{audit_id}/rerun", params={"limit": 200}, headers=world.auth("operator")
    )
    assert response.status_code == 200, response.text
    return int(response.headers["x-surveil-audit-id"]), _scores(response.json())


def test_confirmed_track_brings_its_neighbours_up(client: TestClient, api_world: ApiWorld) -> None:
    services = api_world.services
    audit_id, first = _search(client, api_world)
    own = services.catalog.appearances([api_world.example.id])[0].track_id
    assert own is not None
    ranks = _rank(first)
    # Confirm the lowest-ranked track of another camera: another person, far down the list.
    others = [t for t in first if t != own and _camera(api_world, t) != api_world.example.camera_id]
    assert others, "the first search found no track on another camera"
    confirmed = max(others, key=lambda t: ranks[t])
    marked = _mark(client, api_world, audit_id, confirmed, "confirmed")
    assert marked["score"] == pytest.approx(first[confirmed], abs=1e-3)  # the search's score
    # An independent search from the confirmed track: the tracks more like it than like
    # the query must rise to (at least) their score against it.
    near = services.search().by_track(confirmed, filters=SearchFilters(min_score=0.3), limit=8)
    lifted = sorted(
        (
            s
            for s in near.sightings
            if s.track_id not in (None, confirmed, own)
            and s.best_score > first.get(s.track_id or 0, 0) + 1e-3
        ),
        key=lambda s: -s.best_score,
    )
    assert lifted, "no track is more like the confirmed one than like the query"

    rerun_id, second = _rerun(client, api_world, audit_id)
    again = _rank(second)
    assert second[confirmed] > 0.99 and again[confirmed] <= 1  # an example finds itself
    for s in lifted:
        assert s.track_id in second and second[s.track_id] >= s.best_score - 2e-4
    closest = lifted[0].track_id
    assert closest not in first or again[closest] < ranks[closest], "closest did not rank higher"

    entry = services.access.audit_entry(rerun_id).entry
    assert (entry.action, entry.query_kind, entry.status) == ("search", "feedback_rerun", "ok")
    assert entry.filters["rerun_of"] == audit_id and entry.filters["confirmed"] == 1
    # Feedback given on the re-run's hits joins the original search's.
    _mark(client, api_world, rerun_id, own, "confirmed")
    listed = client.get(f"/api/v1/searches/{audit_id}/feedback", headers=api_world.auth("operator"))
    assert {(f["track_id"], f["verdict"]) for f in listed.json()["feedback"]} == {
        (confirmed, "confirmed"),
        (own, "confirmed"),
    }


def test_rejected_track_and_its_near_duplicates_drop(
    client: TestClient, api_world: ApiWorld
) -> None:
    services = api_world.services
    audit_id, first = _search(client, api_world)
    own = services.catalog.appearances([api_world.example.id])[0].track_id
    ranks = _rank(first)
    rejected = min((t for t in first if t != own), key=lambda t: ranks[t])
    _mark(client, api_world, audit_id, rejected, "rejected")
    vec = {t: services.catalog.track_embedding(t)[1] for t in first}
    sim = {t: float(np.dot(vec[t], vec[rejected])) for t in first}
    # Near-duplicates: clearly closer to the rejected track than to the query.
    dupes = [t for t in first if t not in (rejected, own) and sim[t] > first[t] + 0.02]
    untouched = [t for t in first if t != rejected and sim[t] <= first[t] - 1e-3]
    assert dupes and own in untouched

    _, second = _rerun(client, api_world, audit_id)
    assert rejected not in second
    for t in dupes:
        assert t not in second or second[t] < first[t] - 0.01, f"near-duplicate {t} kept its score"
    for t in untouched:
        assert second.get(t) == pytest.approx(first[t], abs=2e-4)  # nothing else moves

    # Changing one's mind: clearing the verdict brings the track back.
    cleared = client.delete(
        f"/api/v1/searches/{audit_id}/feedback",
        params={"track_id": rejected},
        headers=api_world.auth("operator"),
    )
    assert cleared.status_code == 204
    _, third = _rerun(client, api_world, audit_id)
    assert third == pytest.approx(first, abs=2e-4)
    trail = services.access.audit_entries(action="feedback_clear", limit=5)
    assert trail[0].entry.track_id == rejected


def test_feedback_refuses_what_is_not_a_search_hit(client: TestClient, api_world: ApiWorld) -> None:
    op = api_world.auth("operator")
    audit_id, first = _search(client, api_world)
    _mark(client, api_world, audit_id, next(iter(first)), "confirmed")
    no_hit = client.put(
        f"/api/v1/searches/{audit_id}/feedback", json={"verdict": "confirmed"}, headers=op
    )
    assert no_hit.status_code == 400 and "exactly one hit" in no_hit.json()["error"]["message"]
    gone = client.put(
        f"/api/v1/searches/{audit_id}/feedback",
        json={"verdict": "confirmed", "track_id": 2**62},
        headers=op,
    )
    assert gone.status_code == 404
    key_audit = api_world.services.access.audit_entries(action="feedback", limit=1)[0].id
    not_search = client.post(f"/api/v1/searches/{key_audit}/rerun", headers=op)
    assert not_search.status_code == 400 and "not a search" in not_search.json()["error"]["message"]
    viewer = client.get(f"/api/v1/searches/{audit_id}/feedback", headers=api_world.auth("viewer"))
    assert viewer.status_code == 403


def _camera(world: ApiWorld, track: int) -> str:
    return world.services.catalog.tracks([track])[0].camera_id
