"""The OpenAPI document needs a key; the docs page is self-contained and documents 400s."""

from __future__ import annotations

import pytest
from api_world import ApiWorld
from fastapi.testclient import TestClient

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SPEC = "/api/v1/openapi.json"


def test_openapi_document_needs_a_key(client: TestClient, api_world: ApiWorld) -> None:
    refused = client.get(SPEC)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert client.get(SPEC, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get(SPEC, headers=api_world.auth("viewer"))
    assert ok.status_code == 200
    assert "/api/v1/search" in ok.json()["paths"]
    assert SPEC not in ok.json()["paths"]  # the document does not list itself


def test_docs_page_is_self_hosted_and_asks_for_the_key(client: TestClient) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "https://" not in text and "http://" not in text  # no CDN: works air-gapped
    assert "Authorization: `Bearer ${key}`" in text and "openapi.json" in text


def test_document_says_400_where_fastapi_said_422(client: TestClient, api_world: ApiWorld) -> None:
    spec = client.get(SPEC, headers=api_world.auth("viewer")).json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            assert "400" in op["responses"], f"{method} {path} does not document 400"
            if "422" in op["responses"]:  # only where the app gives it: image too large
                assert path in ("/api/v1/search", "/api/v1/compare")
    since = next(
        p for p in spec["paths"]["/api/v1/audit"]["get"]["parameters"] if p["name"] == "since"
    )
    assert {"type": "string", "format": "date-time"} in since["schema"]["anyOf"]


def test_refused_time_and_405_allow_header(client: TestClient, api_world: ApiWorld) -> None:
    admin = api_world.auth("admin")
    bad = client.get("/api/v1/audit", params={"since": "yesterday"}, headers=admin)
    assert bad.status_code == 400 and "RFC 3339" in bad.json()["error"]["message"]
    naive = client.get("/api/v1/audit", params={"since": "2026-03-01T12:00:00"}, headers=admin)
    assert naive.status_code == 400  # format: date-time needs the offset
    good = client.get("/api/v1/audit", params={"since": "2026-03-01T12:00:00Z"}, headers=admin)
    assert good.status_code == 200
    put = client.put("/api/v1/keys", headers=admin)
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, POST"  # both routes at this path, not only the first
    strict = client.patch("/api/v1/cameras/lobby", json={"enabled": 1}, headers=admin)
    assert strict.status_code == 400  # a number is not a boolean
