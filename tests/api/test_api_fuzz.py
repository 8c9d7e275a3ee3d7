"""Property-based fuzzing over the OpenAPI document: no generated request may cause a 5xx.

Schemathesis reads /api/v1/openapi.json from the real app and lets Hypothesis generate
requests for every operation (bodies, form fields, paths, queries), sent with an admin
key so every route is reached. Key revocation is left out: a random id could revoke the
keys the other API tests share.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from api_world import ApiWorld
from hypothesis import HealthCheck, given, settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: Examples per operation: enough to hit the edges of each field on two cores in ~1-2 min.
EXAMPLES = 40


def _operations(world: ApiWorld) -> list[Any]:
    # The document needs a key like the API itself.
    spec_url = "/api/v1/openapi.json"
    schema: Any = schemathesis.openapi.from_asgi(spec_url, world.app, headers=world.auth("viewer"))
    schema = schema.exclude(method="DELETE", path_regex=r"/keys/")
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation: Any, headers: dict[str, str]) -> None:
    """Run Hypothesis over one operation; the first 5xx fails with the request shown."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, (
            f"{where} -> {response.status_code}: {response.text[:300]}"
        )
        if response.status_code >= 400:
            # Every refusal carries the documented error body.
            assert set(response.json()) == {"error"}, f"{where}: {response.text[:300]}"

    check()


def test_no_request_causes_a_server_error(api_world: ApiWorld) -> None:
    operations = _operations(api_world)
    assert len(operations) >= 15  # every documented route is fuzzed
    for operation in operations:
        _fuzz(operation, api_world.auth("admin"))
