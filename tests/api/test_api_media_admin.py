"""Sightings' images, keyframe browsing, camera administration and metrics, over HTTP."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from api_world import ApiWorld
from fastapi.testclient import TestClient

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image)


def test_appearance_and_its_crop(client: TestClient, api_world: ApiWorld) -> None:
    ex, viewer = api_world.example, api_world.auth("viewer")
    body = client.get(f"/api/v1/appearances/{ex.id}", headers=viewer).json()
    assert body["id"] == ex.id and body["camera_id"] == ex.camera_id
    assert body["keyframe_id"] == ex.keyframe_id and "score" not in body
    crop = client.get(body["crop_url"], headers=viewer)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert crop.content == api_world.example_crop.read_bytes()
    assert client.get("/api/v1/appearances/999999999", headers=viewer).status_code == 404


def test_keyframe_detail_and_image_with_box(client: TestClient, api_world: ApiWorld) -> None:
    ex, viewer = api_world.example, api_world.auth("viewer")
    detail = client.get(f"/api/v1/keyframes/{ex.keyframe_id}", headers=viewer).json()
    assert ex.id in [a["id"] for a in detail["appearances"]]
    plain = _decode(client.get(detail["image_url"], headers=viewer).content)
    assert plain.shape[:2] == (detail["height"], detail["width"])
    box = ",".join(str(round(v)) for v in ex.bbox)
    boxed = client.get(detail["image_url"], headers=viewer, params={"box": box})
    assert boxed.status_code == 200
    drawn = _decode(boxed.content)
    x1, y1 = (round(v) for v in ex.bbox[:2])
    # The box outline is drawn: pixels on its top edge changed, far corners did not much.
    assert np.abs(drawn[y1, x1 + 5].astype(int) - plain[y1, x1 + 5].astype(int)).sum() > 60
    bad = client.get(detail["image_url"], headers=viewer, params={"box": "1,2,3"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "box",
    ["0,0,2147483648,10", "-1,0,10,10", "nan,0,10,10", "0,0,inf,10", "9,9,1,1", "a,b,c,d"],
)
def test_hostile_boxes_are_a_400_with_a_message(
    client: TestClient, api_world: ApiWorld, box: str
) -> None:
    viewer = api_world.auth("viewer")
    url = f"/api/v1/keyframes/{api_world.example.keyframe_id}.jpg"
    response = client.get(url, headers=viewer, params={"box": box})
    assert response.status_code == 400, response.text
    assert "box" in response.json()["error"]["message"]


def test_a_box_past_the_edges_is_drawn_cut_to_the_image(
    client: TestClient, api_world: ApiWorld
) -> None:
    viewer = api_world.auth("viewer")
    detail = client.get(f"/api/v1/keyframes/{api_world.example.keyframe_id}", headers=viewer)
    width, height = detail.json()["width"], detail.json()["height"]
    url = detail.json()["image_url"]
    plain = _decode(client.get(url, headers=viewer).content)
    edge = client.get(url, headers=viewer, params={"box": "10,10,99999,99999"})
    assert edge.status_code == 200
    drawn = _decode(edge.content)
    assert drawn.shape[:2] == (height, width)
    # The clipped box's right and bottom edges lie on the image's last column and row.
    assert (
        np.abs(drawn[height // 2, width - 1].astype(int) - plain[height // 2, width - 1]).sum() > 60
    )
    outside = client.get(url, headers=viewer, params={"box": f"{width + 5},0,{width + 50},10"})
    assert outside.status_code == 400 and "outside" in outside.json()["error"]["message"]


def test_camera_keyframes_are_browsable_in_time_order(
    client: TestClient, api_world: ApiWorld
) -> None:
    viewer = api_world.auth("viewer")
    listed = client.get(
        "/api/v1/cameras/lobby/keyframes",
        headers=viewer,
        params={"since": "2026-03-01T12:00:30Z", "limit": 20},
    ).json()["keyframes"]
    assert 0 < len(listed) <= 20
    times = [k["ts"] for k in listed]
    assert times == sorted(times) and times[0] >= "2026-03-01T12:00:30"
    assert any(k["appearances"] > 0 for k in listed)
    missing = client.get("/api/v1/cameras/nope/keyframes", headers=viewer)
    assert missing.status_code == 404


def test_cameras_list_and_admin_changes(client: TestClient, api_world: ApiWorld) -> None:
    admin, viewer = api_world.auth("admin"), api_world.auth("viewer")
    cams = {c["id"]: c for c in client.get("/api/v1/cameras", headers=viewer).json()["cameras"]}
    assert {"lobby", "cam09"} <= set(cams) and cams["lobby"]["appearances"] > 0
    created = client.post(
        "/api/v1/cameras",
        headers=admin,
        json={"id": "gate-2", "name": "Gate 2", "url": "rtsp://ops:s3cret@10.0.0.7/live"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["url"] == "rtsp://ops:***@10.0.0.7/live"  # never the password
    assert client.post("/api/v1/cameras", headers=admin, json={"id": "gate-2"}).status_code == 409
    bad_id = client.post("/api/v1/cameras", headers=admin, json={"id": "../x"})
    assert bad_id.status_code == 400
    renamed = client.patch("/api/v1/cameras/gate-2", headers=admin, json={"name": "North gate"})
    assert renamed.json()["name"] == "North gate" and renamed.json()["enabled"] is True
    assert renamed.json()["tags"] == [] and renamed.json()["lease"] is None  # no worker yet
    tagged = client.patch("/api/v1/cameras/gate-2", headers=admin, json={"tags": ["heavy", "gpu"]})
    assert tagged.json()["tags"] == ["gpu", "heavy"] and tagged.json()["name"] == "North gate"
    bad_tag = client.patch("/api/v1/cameras/gate-2", headers=admin, json={"tags": ["a,b"]})
    assert bad_tag.status_code in (400, 422), bad_tag.text
    assert (
        client.patch("/api/v1/cameras/gate-2", headers=admin, json={"tags": []}).json()["tags"]
        == []
    )
    disabled = client.post("/api/v1/cameras/gate-2/disable", headers=admin)
    assert disabled.json()["enabled"] is False
    assert client.patch("/api/v1/cameras/none", headers=admin, json={}).status_code == 404
    entries = client.get("/api/v1/audit", headers=admin, params={"limit": 50}).json()["entries"]
    actions = {e["action"] for e in entries if "gate-2" in (e["detail"] or "")}
    assert {"camera.create", "camera.update", "camera.disable"} <= actions


def test_metrics_count_requests_and_report_index_size(
    client: TestClient, api_world: ApiWorld
) -> None:
    viewer = api_world.auth("viewer")
    client.get("/api/v1/cameras", headers=viewer)
    client.post(
        "/api/v1/search",
        headers=api_world.auth("operator"),
        data={"appearance_id": str(api_world.example.id)},
    )
    text = client.get("/metrics", headers=viewer).text
    assert 'surveil_http_requests_total{method="GET",route="/api/v1/cameras",status="200"}' in text
    assert 'surveil_search_seconds_count{kind="appearance",outcome="ok"}' in text
    size = api_world.services.index.size("person")
    assert f'surveil_index_vectors{{space="person"}} {float(size)}' in text


def test_security_headers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_openapi_document(client: TestClient, api_world: ApiWorld) -> None:
    spec = client.get("/api/v1/openapi.json", headers=api_world.auth("viewer")).json()
    assert "/api/v1/search" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
