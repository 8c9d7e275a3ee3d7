"""Evidence export (issue 13, item 5) from the ingested API world: archives that verify.

A sighting (CLI), an alert raised by a real rule over the world's real appearances (API),
and a search the API ran (its recorded sightings) are exported; every archive verifies,
holds the stored bytes untouched, and the same archive with a byte changed, a file
removed or the manifest edited fails `surveil export verify` naming that file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import ApiWorld
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from surveil.alerts.model import RuleSpec
from surveil.alerts.rules import ExampleImage
from surveil.cli import app as cli_app
from surveil.jobs.alerting import evaluate_rule
from surveil.vision.crops import read_image

pytestmark = [pytest.mark.postgres]


def _env(world: ApiWorld) -> dict[str, str]:
    s = world.settings
    return {
        "SURVEIL_STORAGE__ROOT": str(s.storage.root),
        "SURVEIL_DATABASE__URL": s.database_url,
        "SURVEIL_MODEL_DIR": str(s.model_dir),
    }


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def _zip(members: dict[str, bytes], path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _verify(world: ApiWorld, path: Path) -> tuple[int, str]:
    done = CliRunner().invoke(cli_app, ["export", "verify", str(path)], env=_env(world))
    return done.exit_code, done.stdout + done.stderr


def _check_stored_bytes(world: ApiWorld, members: dict[str, bytes]) -> dict[str, object]:
    """Every item's crop and keyframe are the blob store's bytes, hashed as the manifest says."""
    manifest: dict[str, object] = json.loads(members["manifest.json"])
    items = manifest["items"]
    assert isinstance(items, list) and items
    files = manifest["files"]
    assert isinstance(files, dict)
    for item in items:
        stored = world.services.catalog.appearances([item["appearance_id"]])[0]
        assert members[item["crop"]] == world.services.blobs.get(stored.crop_path)
        assert files[item["crop"]]["sha256"] == hashlib.sha256(members[item["crop"]]).hexdigest()
        assert item["keyframe"] in members and item["camera_id"] == stored.camera_id
        assert len(item["box"]) == 4 and item["ts"] == stored.ts.isoformat()
    report = members["report.html"].decode()
    assert f'src="{items[0]["crop"]}"' in report and "<script" not in report
    return manifest


@pytest.fixture(scope="module")
def sighting_zip(api_world: ApiWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`surveil export sighting` of the world's example person's track, via the CLI."""
    out = tmp_path_factory.mktemp("export") / "sighting.zip"
    track = api_world.example.track_id
    assert track is not None
    args = ["export", "sighting", str(track), "-o", str(out), "--json"]
    done = CliRunner().invoke(cli_app, args, env=_env(api_world))
    assert done.exit_code == 0, done.output
    info = json.loads(done.stdout)
    assert info["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    entry = api_world.services.access.audit_entry(info["audit_id"]).entry
    assert (entry.action, entry.status, entry.role) == ("export", "ok", "cli")
    assert entry.filters["archive_sha256"] == info["sha256"]
    return out


def test_sighting_export_verifies_and_holds_the_stored_files(
    api_world: ApiWorld, sighting_zip: Path
) -> None:
    members = _members(sighting_zip.read_bytes())
    manifest = _check_stored_bytes(api_world, members)
    track = api_world.services.catalog.track_members([api_world.example.track_id or 0])
    assert len(manifest["items"]) == len(next(iter(track.values())))  # type: ignore[arg-type]
    assert manifest["exported_by"]["role"] == "cli"  # type: ignore[index]
    assert manifest["model_ids"] == [api_world.example.model_id]
    assert _verify(api_world, sighting_zip) == (0, _verify(api_world, sighting_zip)[1])
    assert "intact" in _verify(api_world, sighting_zip)[1]


@pytest.mark.parametrize("damage", ["byte", "removed", "manifest"])
def test_a_tampered_archive_fails_verify_naming_the_file(
    api_world: ApiWorld, sighting_zip: Path, tmp_path: Path, damage: str
) -> None:
    members = _members(sighting_zip.read_bytes())
    crop = next(n for n in members if n.startswith("crops/"))
    if damage == "byte":
        data = bytearray(members[crop])
        data[len(data) // 2] ^= 0x01
        members[crop] = bytes(data)
        expect = f"error: {crop}: SHA-256 does not match"
    elif damage == "removed":
        del members[crop]
        expect = f"error: {crop}: listed in SHA256SUMS but missing"
    else:
        members["manifest.json"] = members["manifest.json"].replace(b'"lobby"', b'"gate"', 1)
        expect = "error: manifest.json: SHA-256 does not match"
    code, output = _verify(api_world, _zip(members, tmp_path / "bad.zip"))
    assert code == 1 and output.strip().splitlines() == [output.strip()]
    assert output.startswith(expect), output


@pytest.fixture(scope="module")
def alert_id(api_world: ApiWorld) -> Iterator[int]:
    """An alert a real rule (the example person's crop) raises over the ingested lobby."""
    services = api_world.services
    example = ExampleImage(read_image(api_world.example_crop), api_world.example_crop.read_bytes())
    spec = RuleSpec(name="export-test", threshold=0.75, cameras=("lobby",), labels=("person",))
    rule = services.rules().create(spec, [example], created_by="test")
    # Rewind the new rule to before the ingest, so it scores the world's appearances.
    services.alerts.commit_evaluation(
        rule, expected_watermark=rule.watermark, new_watermark=0, new=[], extended=[], notify=False
    )
    try:
        assert evaluate_rule(services.alerts, rule.id, batch=1000, notify=False).new_alerts >= 1
        yield services.alerts.list_alerts(rule_id=rule.id)[0].id
    finally:
        services.rules().delete(rule.id)  # its alerts and (unshared) example files too


def test_api_alert_export_needs_an_operator_verifies_and_is_audited(
    client: TestClient, api_world: ApiWorld, alert_id: int, tmp_path: Path
) -> None:
    url = f"/api/v1/export/alert/{alert_id}"
    assert client.post(url, headers=api_world.auth("viewer")).status_code == 403
    assert client.post(url).status_code == 401
    response = client.post(url, headers=api_world.auth("operator"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    members = _members(response.content)
    manifest = _check_stored_bytes(api_world, members)
    alert = api_world.services.alerts.get_alert(alert_id)
    assert manifest["subject"]["id"] == alert_id  # type: ignore[index]
    assert manifest["items"][0]["appearance_id"] == alert.appearance_id  # type: ignore[index]
    query = manifest["query"]
    assert isinstance(query, dict) and "webhooks" not in query["rule"]
    assert query["crop"] in members  # the rule's example crop, as stored
    entry = api_world.services.access.audit_entry(int(response.headers["X-Surveil-Audit-Id"]))
    assert (entry.entry.action, entry.entry.key_name) == ("export", "test-operator")
    assert entry.entry.filters["archive_sha256"] == hashlib.sha256(response.content).hexdigest()
    path = tmp_path / "alert.zip"
    path.write_bytes(response.content)
    assert _verify(api_world, path)[0] == 0
    missing = client.post("/api/v1/export/alert/999999", headers=api_world.auth("operator"))
    assert missing.status_code == 404


def test_api_search_export_holds_the_sightings_that_search_returned(
    client: TestClient, api_world: ApiWorld, tmp_path: Path
) -> None:
    op = api_world.auth("operator")
    files = {"image": ("q.jpg", api_world.example_crop.read_bytes(), "image/jpeg")}
    asked = {"label": "person", "path": "true"}
    found = client.post("/api/v1/search", files=files, data=asked, headers=op)
    assert found.status_code == 200, found.text
    audit_id = int(found.headers["X-Surveil-Audit-Id"])
    shown = [(s["track_id"], s["best_score"]) for s in found.json()["sightings"]]
    assert shown
    response = client.post(f"/api/v1/export/search/{audit_id}", headers=op)
    assert response.status_code == 200, response.text
    members = _members(response.content)
    manifest = _check_stored_bytes(api_world, members)
    recorded = [(s["track_id"], s["score"]) for s in manifest["subject"]["sightings"]]  # type: ignore[index]
    assert sorted(t for t, _ in recorded) == sorted(t for t, _ in shown)
    assert {t: round(s, 4) for t, s in recorded} == {t: round(s, 4) for t, s in shown}
    # The path across cameras the exported tracks make is the one the search showed.
    exported_path = manifest["subject"]["path"]  # type: ignore[index]
    searched_path = found.json()["path"]
    assert exported_path["legs"]

    def _legs(path: dict[str, list[dict[str, object]]]) -> list[tuple[object, ...]]:
        return [(g["camera_id"], g["track_ids"], g["overlaps"]) for g in path["legs"]]

    assert _legs(exported_path) == _legs(searched_path)
    assert exported_path["hops"] == searched_path["hops"]
    assert (
        f"Path across cameras ({len(exported_path['legs'])} legs" in members["report.html"].decode()
    )
    query = manifest["query"]
    assert isinstance(query, dict) and query["id"] == audit_id
    assert members[query["crop"]] == api_world.example_crop.read_bytes()
    path = tmp_path / "search.zip"
    path.write_bytes(response.content)
    assert _verify(api_world, path)[0] == 0
    # An export audit entry is not a search: refused, with the reason, and audited.
    export_audit = int(response.headers["X-Surveil-Audit-Id"])
    refused = client.post(f"/api/v1/export/search/{export_audit}", headers=op)
    assert refused.status_code == 400 and "not a search" in refused.json()["error"]["message"]
