"""Search through HTTP on the real pipeline's catalog: by upload, appearance, keyframe box."""

from __future__ import annotations

import re
from typing import Any

import pytest
from api_world import ApiWorld, world_settings
from fastapi.testclient import TestClient

from surveil.api.app import create_app
from surveil.container import build_services
from surveil.search.render import result_to_dict

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _appearances(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for s in body["sightings"] for a in s["appearances"]]


def _search(client: TestClient, world: ApiWorld, **kw: Any) -> Any:
    files = kw.pop("files", None)
    return client.post("/api/v1/search", headers=world.auth("operator"), data=kw, files=files)


def test_upload_finds_its_own_appearance_first(client: TestClient, api_world: ApiWorld) -> None:
    with api_world.example_crop.open("rb") as fh:
        response = _search(
            client, api_world, files={"image": ("crop.jpg", fh, "image/jpeg")}, label="person"
        )
    assert response.status_code == 200, response.text
    body = response.json()
    hits = _appearances(body)
    best = max(hits, key=lambda a: a["score"])
    assert best["id"] == api_world.example.id and best["score"] > 0.99
    assert best["crop_url"] == f"/api/v1/appearances/{best['id']}/crop.jpg"
    assert best["keyframe_url"] == f"/api/v1/keyframes/{best['keyframe_id']}.jpg"
    firsts = [s["first_seen"] for s in body["sightings"]]
    assert firsts == sorted(firsts)  # ordered by time
    assert response.headers["x-surveil-audit-id"].isdigit()


def test_response_is_the_cli_json_plus_urls(client: TestClient, api_world: ApiWorld) -> None:
    """Same object as `surveil search --json` (same service), with the two URLs added."""
    app_id = api_world.example.id
    body = _search(client, api_world, appearance_id=str(app_id), limit="10").json()
    direct = api_world.services.search().by_appearance(app_id, limit=10)
    expected = result_to_dict(direct)
    for sighting in body["sightings"]:
        for a in sighting["appearances"]:
            del a["crop_url"], a["keyframe_url"]
    assert body == expected


def test_by_appearance_with_filters(client: TestClient, api_world: ApiWorld) -> None:
    ex = api_world.example
    response = _search(
        client,
        api_world,
        appearance_id=str(ex.id),
        camera=[ex.camera_id],
        since="2026-03-01T12:00:00Z",
        until="2026-03-01T13:00:00Z",
        min_score="0.5",
        gap="5",
        limit="20",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    hits = _appearances(body)
    assert hits and {a["camera_id"] for a in hits} == {ex.camera_id}
    # The floor applies to each sighting (track); its members show their own scores.
    assert all(s["best_score"] >= 0.5 for s in body["sightings"])
    assert len(body["sightings"]) <= 20  # the limit counts sightings (tracks)


def test_other_camera_filter_excludes_the_example(client: TestClient, api_world: ApiWorld) -> None:
    response = _search(client, api_world, appearance_id=str(api_world.example.id), camera="cam09")
    assert response.status_code == 200
    assert {a["camera_id"] for a in _appearances(response.json())} <= {"cam09"}


def test_keyframe_box_search_finds_the_boxed_appearance(
    client: TestClient, api_world: ApiWorld
) -> None:
    ex = api_world.example
    box = ",".join(str(round(v)) for v in ex.bbox)
    response = _search(client, api_world, keyframe_id=str(ex.keyframe_id), box=box, label="person")
    assert response.status_code == 200, response.text
    best = max(_appearances(response.json()), key=lambda a: a["score"])
    assert best["id"] == ex.id and best["score"] > 0.9


def test_unknown_ids_are_404(client: TestClient, api_world: ApiWorld) -> None:
    assert _search(client, api_world, appearance_id="999999999").status_code == 404
    response = _search(client, api_world, keyframe_id="999999999", box="0,0,50,50")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no query at all
        {"appearance_id": "1", "keyframe_id": "1", "box": "0,0,9,9"},  # two queries
        {"keyframe_id": "1"},  # box missing
        {"keyframe_id": "1", "box": "10,10,5,5"},  # inverted box
        {"keyframe_id": "1", "box": "a,b,c,d"},
        {"keyframe_id": "1", "box": "nan,0,10,10"},
        {"appearance_id": "0"},
        {"appearance_id": "x"},
        {"appearance_id": "1", "since": "yesterday"},
        {"appearance_id": "1", "since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        {"appearance_id": "1", "min_score": "3"},
        {"appearance_id": "1", "min_score": "nan"},
        {"appearance_id": "1", "limit": "0"},
        {"appearance_id": "1", "limit": "1000000"},
        {"appearance_id": "1", "gap": "-1"},
        {"appearance_id": "1", "camera": "../../etc"},
        {"appearance_id": "1", "camera": "no-such-camera"},
    ],
)
def test_malformed_queries_and_filters_are_400(
    client: TestClient, api_world: ApiWorld, fields: dict[str, str]
) -> None:
    response = _search(client, api_world, **fields)
    assert response.status_code == 400, (fields, response.text)
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"]


def test_every_search_is_audited(client: TestClient, api_world: ApiWorld) -> None:
    with api_world.example_crop.open("rb") as fh:
        response = _search(
            client,
            api_world,
            files={"image": ("crop.jpg", fh, "image/jpeg")},
            camera="lobby",
            min_score="0.3",
        )
    audit_id = int(response.headers["x-surveil-audit-id"])
    refused = _search(client, api_world, appearance_id="999999999")
    assert refused.status_code == 404

    entries = client.get(
        "/api/v1/audit", headers=api_world.auth("admin"), params={"action": "search"}
    ).json()["entries"]
    entry = next(e for e in entries if e["id"] == audit_id)
    import hashlib

    digest = hashlib.sha256(api_world.example_crop.read_bytes()).hexdigest()
    assert entry["key_id"] == api_world.key_ids["operator"]
    assert entry["key_name"] == "test-operator" and entry["status"] == "ok"
    assert entry["query_kind"] == "image" and entry["crop_sha256"] == digest
    assert entry["filters"]["cameras"] == ["lobby"] and entry["filters"]["min_score"] == 0.3
    assert entry["result_count"] == len(_appearances(response.json()))
    assert entry["client"]
    copy = client.get(entry["crop_url"], headers=api_world.auth("admin"))
    assert copy.status_code == 200 and copy.content == api_world.example_crop.read_bytes()
    # The refused search is on the trail too, with why.
    latest = [e for e in entries if e["appearance_id"] == 999999999]
    assert latest and latest[0]["status"] == "refused" and "no appearance" in latest[0]["detail"]


def _stages(header: str) -> dict[str, float]:
    """`name;dur=ms, ...` as {name: ms}, in header order."""
    out: dict[str, float] = {}
    for entry in header.split(","):
        name, _, dur = entry.strip().partition(";dur=")
        out[name] = float(dur)
    return out


def test_server_timing_times_every_stage(client: TestClient, api_world: ApiWorld) -> None:
    """One entry per stage, then total (the console reads `total;dur=` by that name)."""
    with api_world.example_crop.open("rb") as fh:
        response = _search(client, api_world, files={"image": ("crop.jpg", fh, "image/jpeg")})
    assert response.status_code == 200, response.text
    header = response.headers["server-timing"]
    stages = _stages(header)
    assert list(stages) == ["embed", "index", "hydrate", "rerank", "group", "audit", "total"]
    # No label: the detector decided the crop's space, which is embed's share.
    assert stages["embed"] > 0 and stages["hydrate"] > 0 and stages["audit"] > 0
    assert sum(v for k, v in stages.items() if k != "total") <= stages["total"] + 0.5
    assert re.search(r"total;dur=([\d.]+)", header)  # the console's own pattern


def test_a_result_cut_at_the_limit_says_why(client: TestClient, api_world: ApiWorld) -> None:
    ex = api_world.example
    cut = _search(client, api_world, appearance_id=str(ex.id), min_score="-1", limit="1").json()
    assert (cut["truncated"], cut["truncated_reason"], len(cut["sightings"])) == (True, "limit", 1)
    whole = _search(client, api_world, appearance_id=str(ex.id), limit="500").json()
    assert whole["truncated"] is False and "truncated_reason" not in whole


def test_a_search_stopped_at_max_candidates_says_why(api_world: ApiWorld) -> None:
    """The same catalog served with the shallowest search.max_candidates: the answer fits
    the limit, but every candidate still matched, so the operator is told more may exist."""
    url, models = api_world.settings.database.url, api_world.settings.model_dir
    assert url is not None and models is not None
    settings = world_settings(api_world.root, url, models, **{"search.max_candidates": 10})
    services = build_services(settings)
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as shallow:
            body = _search(
                shallow, api_world, appearance_id=str(api_world.example.id), min_score="-1"
            ).json()
    finally:
        services.close()
    assert (body["truncated"], body["truncated_reason"]) == (True, "max_candidates")
    assert len(body["sightings"]) == 10  # fewer than the limit (50): cut by depth
