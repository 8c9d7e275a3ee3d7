"""Compare two crops (issue 13, item 4): the verdicts, the JSON contract, the audit trail.

Real person embedder and detector over the API world's catalog: two Market-1501 crops of
identity 0001 (cameras 1 and 6) against a MOT17-09 person cut from its ground truth.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import httpx
import pytest
from api_world import ApiWorld
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from surveil.cli import app as cli_app

pytestmark = [pytest.mark.postgres]

MARKET = Path("reid/market1501_person_search_demo/query")
MOT09 = Path("mot/MOT17-mini/train/MOT17-09-FRCNN")


@pytest.fixture(scope="module")
def crops(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two crops of one Market person (a, b) and another person from MOT17-09 (other)."""
    a, b = sorted((shared_data / MARKET).glob("0001_*.jpg"))
    gt = (shared_data / MOT09 / "gt" / "gt.txt").read_text().splitlines()
    frame, _ident, x, y, w, h = (int(float(v)) for v in gt[0].split(",")[:6])
    image = cv2.imread(str(shared_data / MOT09 / "img1" / f"{frame:06d}.jpg"))
    assert image is not None
    other = tmp_path_factory.mktemp("compare") / "mot09_person.jpg"
    assert cv2.imwrite(str(other), image[y : y + h, x : x + w])
    return {"a": a, "b": b, "other": other}


def _post(
    client: TestClient, world: ApiWorld, one: Path, two: Path, role: str = "operator"
) -> httpx.Response:
    files = {
        "a": (one.name, one.read_bytes(), "image/jpeg"),
        "b": (two.name, two.read_bytes(), "image/jpeg"),
    }
    response: httpx.Response = client.post(
        "/api/v1/compare", files=files, data={"label": "person"}, headers=world.auth(role)
    )
    return response


def test_api_compare_says_same_for_one_person_and_not_for_another(
    client: TestClient, api_world: ApiWorld, crops: dict[str, Path]
) -> None:
    floor = api_world.settings.search.floor("person")
    same = _post(client, api_world, crops["a"], crops["b"])
    assert same.status_code == 200, same.text
    body = same.json()
    assert set(body) == {"similarity", "space", "threshold", "same"}
    assert body["space"] == "person" and body["threshold"] == floor
    assert body["similarity"] >= floor and body["same"] is True
    other = _post(client, api_world, crops["a"], crops["other"]).json()
    assert other["similarity"] < floor and other["same"] is False
    assert other["similarity"] < body["similarity"]

    entry = api_world.services.access.audit_entry(int(same.headers["X-Surveil-Audit-Id"])).entry
    assert (entry.action, entry.status, entry.key_name) == ("compare", "ok", "test-operator")
    assert entry.crop_sha256 == hashlib.sha256(crops["a"].read_bytes()).hexdigest()
    assert entry.filters["crop_b_sha256"] == hashlib.sha256(crops["b"].read_bytes()).hexdigest()
    assert entry.filters["same"] is True and entry.filters["space"] == "person"
    assert entry.crop_path is not None
    assert api_world.services.blobs.get(entry.crop_path) == crops["a"].read_bytes()
    assert (
        api_world.services.blobs.get(str(entry.filters["crop_b_path"])) == crops["b"].read_bytes()
    )


def test_api_compare_needs_the_operator_role_and_audits_bad_uploads(
    client: TestClient, api_world: ApiWorld, crops: dict[str, Path]
) -> None:
    assert _post(client, api_world, crops["a"], crops["b"], role="viewer").status_code == 403
    [denied] = api_world.services.access.audit_entries(action="compare", limit=1)
    assert (denied.entry.status, denied.entry.key_name) == ("refused", "test-viewer")
    assert "HTTP 403" in (denied.entry.detail or "")
    assert str(denied.entry.filters["b"]).startswith(f"file '{crops['b'].name}' image/jpeg")
    assert denied.entry.query_kind == "compare"
    files = {
        "a": ("a.jpg", crops["a"].read_bytes(), "image/jpeg"),
        "b": ("b.jpg", b"not an image at all", "image/jpeg"),
    }
    bad = client.post("/api/v1/compare", files=files, headers=api_world.auth("operator"))
    assert bad.status_code == 415, bad.text
    assert "crop b" in bad.json()["error"]["message"]
    [last] = api_world.services.access.audit_entries(action="compare", limit=1)
    assert last.entry.status == "refused" and "HTTP 415" in (last.entry.detail or "")
    files["b"] = ("b.jpg", b"", "image/jpeg")  # an empty part: a missing crop, a 400
    empty = client.post("/api/v1/compare", files=files, headers=api_world.auth("operator"))
    assert empty.status_code == 400 and "crop b is empty" in empty.json()["error"]["message"]


def test_cli_compare_json_contract_and_exit_codes(
    api_world: ApiWorld, crops: dict[str, Path]
) -> None:
    s = api_world.settings
    env = {
        "SURVEIL_STORAGE__ROOT": str(s.storage.root),
        "SURVEIL_DATABASE__URL": s.database_url,
        "SURVEIL_MODEL_DIR": str(s.model_dir),
        "SURVEIL_DETECTOR__WEIGHTS": str(s.detector.weights),
    }
    runner = CliRunner()
    verdicts = []
    for other in ("b", "other"):  # no --label: the detector labels both crops
        args = ["compare", str(crops["a"]), str(crops[other]), "--json"]
        done = runner.invoke(cli_app, args, env=env)
        assert done.exit_code == 0, done.output
        body = json.loads(done.stdout)
        assert list(body) == ["similarity", "space", "threshold", "same"]
        assert isinstance(body["similarity"], float) and isinstance(body["same"], bool)
        assert isinstance(body["threshold"], float) and body["space"] == "person"
        verdicts.append(body["same"])
    assert verdicts == [True, False]
    text = runner.invoke(cli_app, ["compare", str(crops["a"]), str(crops["b"])], env=env)
    assert text.exit_code == 0 and "same object likely" in text.stdout
    missing = runner.invoke(cli_app, ["compare", str(crops["a"]), "/nonexistent.jpg"], env=env)
    assert missing.exit_code == 2
    assert missing.stderr.strip().startswith("error: cannot read crop B /nonexistent.jpg")
    assert len(missing.stderr.strip().splitlines()) == 1
