"""Rules and alerts over HTTP: operators manage rules, viewers read, every change audited.

A fresh PostgreSQL catalog per module; rule examples are embedded by the real person
model, and appearances carrying a chosen embedding go in through the catalog's write path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from synthetic import T0, store_persons

from surveil.api.app import create_app
from surveil.config import load_settings
from surveil.container import Services, build_services
from surveil.jobs.alerting import evaluate_rule
from surveil.storage.migrate import upgrade

pytestmark = [pytest.mark.postgres]


@dataclass
class World:
    services: Services
    client: TestClient
    keys: dict[str, str]
    crop: bytes

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, pg_server: str, shared_data: Path
) -> Iterator[World]:
    from conftest import fresh_pg_database

    root = tmp_path_factory.mktemp("alerts-api")
    models = shared_data / "models"
    query = shared_data / "reid" / "market1501_person_search_demo" / "query"
    crops = sorted(query.glob("*.jpg"))
    assert crops, f"no Market-1501 query crops in {query}"
    with fresh_pg_database(pg_server) as url:
        upgrade(url)
        settings = load_settings(
            overrides={
                "storage.root": str(root),
                "database.url": url,
                "model_dir": str(models),
                "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
                "api.console": False,
                # Names are matched by name: the tests need no DNS for hooks.example.
                "alerts.webhook_hosts": ["hooks.example"],
            }
        )
        services = build_services(settings)
        keys = {
            r: services.access.create_key(name=f"t-{r}", role=r)[1] for r in ("viewer", "operator")
        }
        crop = crops[0].read_bytes()
        try:
            with TestClient(create_app(services), raise_server_exceptions=False) as client:
                yield World(services, client, keys, crop)
        finally:
            services.close()


def _create(world: World, name: str, **fields: object) -> dict[str, object]:
    data = {"name": name, "threshold": "0.8", "label": "person", **fields}
    files = {"example": ("crop.jpg", world.crop, "image/jpeg")}
    response = world.client.post(
        "/api/v1/rules", data=data, files=files, headers=world.auth("operator")
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_operator_creates_viewer_reads_and_cannot_write(world: World) -> None:
    rule = _create(
        world, "suspect-a", camera=["lobby"], webhook=["https://hooks.example/a"], secret="s" * 20
    )
    assert rule["space"] == "person" and rule["cameras"] == ["lobby"]
    assert rule["has_secret"] is True and "secret" not in rule
    viewer = world.auth("viewer")
    listed = world.client.get("/api/v1/rules", headers=viewer).json()["rules"]
    assert rule["id"] in [r["id"] for r in listed]
    example = rule["examples"][0]  # type: ignore[index]
    image = world.client.get(example["crop_url"], headers=viewer)
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    denied = world.client.post(
        "/api/v1/rules",
        data={"name": "nope", "threshold": "0.5"},
        files={"example": ("c.jpg", world.crop, "image/jpeg")},
        headers=viewer,
    )
    assert denied.status_code == 403
    assert world.client.get("/api/v1/rules").status_code == 401


def test_viewers_see_webhook_urls_as_host_only_and_internal_hosts_are_refused(
    world: World,
) -> None:
    hook = "https://bot:pw@hooks.example/alerts/abc?token=s3cret"
    rule = _create(world, "redacted", webhook=[hook])
    for role, expected in (("viewer", ["https://hooks.example"]), ("operator", [hook])):
        listed = world.client.get("/api/v1/rules", headers=world.auth(role)).json()["rules"]
        assert next(r for r in listed if r["id"] == rule["id"])["webhooks"] == expected
        one = world.client.get(f"/api/v1/rules/{rule['id']}", headers=world.auth(role))
        assert one.json()["webhooks"] == expected
        assert role == "operator" or "s3cret" not in one.text
    for url in ("http://127.0.0.1:5432/", "http://0x7f000001/", "https://hooks.example:6379/"):
        refused = world.client.post(
            "/api/v1/rules",
            data={"name": "ssrf", "threshold": "0.5", "webhook": url},
            files={"example": ("c.jpg", world.crop, "image/jpeg")},
            headers=world.auth("operator"),
        )
        assert refused.status_code == 400, (url, refused.text)
        assert "alerts.webhook_hosts" in refused.json()["error"]["message"]
    patched = world.client.patch(
        f"/api/v1/rules/{rule['id']}",
        json={"webhooks": ["http://169.254.169.254/latest/meta-data"]},
        headers=world.auth("operator"),
    )
    assert patched.status_code == 400, patched.text
    assert "alerts.webhook_hosts" in patched.json()["error"]["message"]


def test_bad_rules_are_refused_with_clear_errors(world: World) -> None:
    op = world.auth("operator")
    no_example = world.client.post(
        "/api/v1/rules", data={"name": "x", "threshold": "0.5"}, headers=op
    )
    assert no_example.status_code == 400 and "example" in no_example.json()["error"]["message"]
    bad_hook = world.client.post(
        "/api/v1/rules",
        data={"name": "x", "threshold": "0.5", "webhook": "ftp://x"},
        files={"example": ("c.jpg", world.crop, "image/jpeg")},
        headers=op,
    )
    assert bad_hook.status_code == 400 and "webhook" in bad_hook.json()["error"]["message"]
    not_image = world.client.post(
        "/api/v1/rules",
        data={"name": "x", "threshold": "0.5"},
        files={"example": ("c.jpg", b"hello", "image/jpeg")},
        headers=op,
    )
    assert not_image.status_code == 415
    _create(world, "dup")
    dup = world.client.post(
        "/api/v1/rules",
        data={"name": "dup", "threshold": "0.5"},
        files={"example": ("c.jpg", world.crop, "image/jpeg")},
        headers=op,
    )
    assert dup.status_code == 409


def test_alerts_are_listed_detailed_and_acknowledged(world: World) -> None:
    rule = _create(world, "suspect-b")
    rule_id = int(rule["id"])  # type: ignore[call-overload]
    example = world.services.alerts.example_vectors(rule_id)[0]
    store_persons(world.services, "gate", [(0, example), (3, example)])
    assert evaluate_rule(world.services.alerts, rule_id, batch=100).new_alerts == 1
    viewer, op = world.auth("viewer"), world.auth("operator")
    alerts = world.client.get("/api/v1/alerts", params={"rule_id": rule_id}, headers=viewer).json()
    [alert] = alerts["alerts"]
    assert alert["camera_id"] == "gate" and alert["hits"] == 2 and not alert["acknowledged"]
    assert alert["ts"].startswith(T0.strftime("%Y-%m-%dT%H:%M"))
    detail = world.client.get(f"/api/v1/alerts/{alert['id']}", headers=viewer).json()
    assert detail["deliveries"] == []
    assert world.client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=viewer).status_code == 403
    acked = world.client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=op).json()
    assert acked["acknowledged"] and acked["acknowledged_by"] == "t-operator"
    open_ = world.client.get("/api/v1/alerts", params={"acknowledged": "false"}, headers=viewer)
    assert alert["id"] not in [a["id"] for a in open_.json()["alerts"]]


def test_rule_test_update_delete_and_audit(world: World) -> None:
    rule = _create(world, "suspect-c")
    rule_id = rule["id"]
    example = world.services.alerts.example_vectors(int(rule_id))[0]  # type: ignore[call-overload]
    store_persons(world.services, "yard", [(0, example)])
    op = world.auth("operator")
    report = world.client.post(
        f"/api/v1/rules/{rule_id}/test", json={"since": T0.isoformat()}, headers=op
    ).json()
    assert report["new_alerts"] >= 1 and report["top_scores"][0] == pytest.approx(1.0, abs=1e-3)
    patched = world.client.patch(
        f"/api/v1/rules/{rule_id}", json={"enabled": False, "threshold": 0.9}, headers=op
    ).json()
    assert patched["enabled"] is False and patched["threshold"] == 0.9
    gone = world.client.delete(f"/api/v1/rules/{rule_id}", headers=op).json()
    assert gone == {"id": rule_id, "name": "suspect-c", "deleted": True}
    assert world.client.get(f"/api/v1/rules/{rule_id}", headers=op).status_code == 404
    actions = [e.entry.action for e in world.services.access.audit_entries(limit=50)]
    assert {"rule.create", "rule.update", "rule.delete"} <= set(actions)
