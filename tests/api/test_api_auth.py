"""Access control on the real app: no key, unknown key, revoked key, each role's reach."""

from __future__ import annotations

import pytest
from api_world import ApiWorld
from fastapi.testclient import TestClient

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _error(response: object) -> dict[str, str]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    return dict(body["error"])


def test_health_needs_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "index": "ok",
        "models": "ok",
        "blobs": "ok",
    }


@pytest.mark.parametrize(
    "path", ["/api/v1/me", "/api/v1/cameras", "/api/v1/audit", "/metrics", "/api/v1/keys"]
)
def test_missing_key_is_401_with_a_bearer_challenge(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert _error(response)["code"] == "unauthorized"


def test_unknown_and_malformed_keys_are_401(client: TestClient) -> None:
    for value in ["Bearer svk_not-a-real-key", "Bearer " + "x" * 5000, "Basic Zm9vOmJhcg=="]:
        response = client.get("/api/v1/me", headers={"Authorization": value})
        assert response.status_code == 401, value[:40]


def test_revoked_key_is_401(client: TestClient, api_world: ApiWorld) -> None:
    response = client.get("/api/v1/me", headers=api_world.auth("revoked"))
    assert response.status_code == 401
    assert "revoked" in _error(response)["message"]


def test_me_names_the_caller(client: TestClient, api_world: ApiWorld) -> None:
    body = client.get("/api/v1/me", headers=api_world.auth("operator")).json()
    assert body == {
        "id": api_world.key_ids["operator"],
        "name": "test-operator",
        "role": "operator",
        "max_upload_bytes": api_world.settings.api.max_upload_bytes,
    }


def test_viewer_reads_but_may_not_search(client: TestClient, api_world: ApiWorld) -> None:
    viewer = api_world.auth("viewer")
    assert client.get("/api/v1/cameras", headers=viewer).status_code == 200
    app_id = api_world.example.id
    assert client.get(f"/api/v1/appearances/{app_id}", headers=viewer).status_code == 200
    response = client.post("/api/v1/search", headers=viewer, data={"appearance_id": str(app_id)})
    assert response.status_code == 403
    assert "operator" in _error(response)["message"]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_admin_endpoints_refuse_lower_roles(
    client: TestClient, api_world: ApiWorld, role: str
) -> None:
    headers = api_world.auth(role)
    assert client.get("/api/v1/audit", headers=headers).status_code == 403
    assert client.get("/api/v1/keys", headers=headers).status_code == 403
    created = client.post("/api/v1/cameras", headers=headers, json={"id": "nope"})
    assert created.status_code == 403
    assert client.post("/api/v1/cameras/lobby/disable", headers=headers).status_code == 403


def test_key_created_over_the_api_works_until_revoked(
    client: TestClient, api_world: ApiWorld
) -> None:
    admin = api_world.auth("admin")
    created = client.post("/api/v1/keys", headers=admin, json={"name": "temp", "role": "viewer"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "name", "role", "key"} and body["key"].startswith("svk_")
    mine = {"Authorization": f"Bearer {body['key']}"}
    assert client.get("/api/v1/me", headers=mine).json()["role"] == "viewer"
    listed = {k["id"]: k for k in client.get("/api/v1/keys", headers=admin).json()["keys"]}
    assert body["key"] not in str(listed)  # only the prefix is ever shown again
    assert listed[body["id"]]["prefix"] == body["key"][:8]
    revoked = client.delete(f"/api/v1/keys/{body['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/api/v1/me", headers=mine).status_code == 401
    actions = [e["action"] for e in client.get("/api/v1/audit", headers=admin).json()["entries"]]
    assert "key.create" in actions and "key.revoke" in actions


def test_keys_are_stored_only_as_hashes(api_world: ApiWorld) -> None:
    from sqlalchemy import text

    with api_world.services.engine.connect() as conn:
        stored = " ".join(str(r) for r in conn.execute(text("SELECT * FROM api_keys")))
    for key in api_world.keys.values():
        assert key not in stored
