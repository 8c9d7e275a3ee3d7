"""`surveil embedder tune` on real crops and the real OSNet: twin, training, export, errors.

The catalog run reuses the session's ingested API world (the lobby video and MOT17-09,
where several people share keyframes), so no video is ingested again here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from api_world import ApiWorld
from cli_process import cli_env, run_cli
from typer.testing import CliRunner

from surveil.cli import app
from surveil.config import EmbeddersSettings
from surveil.vision.device import choose_device
from surveil.vision.embedder import OnnxEmbedder, preprocess
from surveil.vision.tune.data import from_mot
from surveil.vision.tune.graph import load_onnx_net

MOT09 = "mot/MOT17-mini/train/MOT17-09-FRCNN"
OSNET = "osnet_x0_25_msmt17.onnx"


def test_torch_twin_matches_onnxruntime_on_real_crops(shared_data: Path) -> None:
    crops = from_mot([shared_data / MOT09], max_frames=1).crops
    assert len(crops) >= 4
    batch = preprocess(crops, 256, 128)
    weights = shared_data / "models" / OSNET
    session = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"images": batch})
    with torch.no_grad():
        got = load_onnx_net(weights).eval()(torch.from_numpy(batch)).numpy()
    assert got.shape == expected.shape == (len(crops), 512)
    # float32 sums in another order: ~1e-4 on features of magnitude ~20.
    assert float(np.abs(got - expected).max()) < 1e-3
    assert float(np.abs(expected).max()) > 1.0  # the comparison is not between zeros


def test_tune_on_the_catalog_writes_a_new_model_the_product_loads(
    api_world: ApiWorld, shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "osnet_site.onnx"
    env = cli_env(api_world.root / "data", api_world.settings.database_url, shared_data / "models")
    args = ["embedder", "tune", "--epochs", "1", "--per-track", "3", "--out", str(out)]
    report = json.loads(run_cli(env, *args, "--json").stdout)
    assert report["path"] == str(out) and out.is_file()
    assert report["identities"] >= 2
    # One epoch: one batch of 8 identities x 4 crops per 32 crops, rounded up.
    assert report["result"]["steps"] == -(-report["crops"] // 32)
    assert report["result"]["stopped_by"] == "epochs"
    assert "surveil index reembed --space person" in report["adopt"]
    plan = choose_device("cpu", None)
    settings = EmbeddersSettings().person
    base = OnnxEmbedder("person", settings, weights=shared_data / "models" / OSNET, device=plan)
    tuned = OnnxEmbedder("person", settings, weights=out, device=plan)
    assert tuned.model_id == report["model"] != base.model_id == report["base_model"]
    crops = from_mot([shared_data / MOT09], max_frames=1).crops
    before, after = base.embed(crops), tuned.embed(crops)
    assert after.shape == before.shape == (len(crops), 512)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    change = np.abs(after - before).max()
    assert change > 1e-4  # it learned something ...
    assert float(np.min(np.sum(after * before, axis=1))) > 0.8  # ... and kept what it knew
    audit = api_world.services.access.audit_entries(action="embedder.tune", limit=5)
    assert any(report["model"] in (e.entry.detail or "") for e in audit)


@pytest.fixture
def cli_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_data: Path) -> None:
    """In-process CLI runs on an empty SQLite catalog with the shared models."""
    env = cli_env(tmp_path / "data", f"sqlite:///{tmp_path / 'c.db'}", shared_data / "models")
    for key in [k for k in env if k.startswith("SURVEIL_")]:
        monkeypatch.setenv(key, env[key])
    monkeypatch.setattr("surveil.config.LOCAL_CONFIG", tmp_path / "surveil.yaml")


@pytest.mark.usefixtures("cli_settings_env")
def test_an_empty_catalog_has_no_tracks_to_learn_from(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["embedder", "tune", "--out", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("error: no tracks to learn from")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.usefixtures("cli_settings_env")
def test_one_labelled_identity_is_too_few(tmp_path: Path, shared_data: Path) -> None:
    person = tmp_path / "crops" / "alice"
    person.mkdir(parents=True)
    for query in sorted((shared_data / "reid/market1501_person_search_demo/query").iterdir()):
        (person / query.name).write_bytes(query.read_bytes())
    args = ["embedder", "tune", "--from-dir", str(tmp_path / "crops")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "error: too few identities" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_catalog_tracks_are_bounded_and_negatives_are_tracks_seen_together(
    api_world: ApiWorld,
) -> None:
    from surveil.storage.tune_data import track_crops

    everything = track_crops(api_world.services.engine, space="person", per_track=100)
    assert everything.together, "MOT17-09 shows several people in one keyframe"
    bounded = track_crops(api_world.services.engine, space="person", per_track=2, max_tracks=3)
    assert list(bounded.members) == sorted(everything.members)[-3:]
    assert all(1 <= len(m) <= 2 for m in bounded.members.values())
    assert bounded.together == {
        (x, y) for x, y in everything.together if {x, y} <= set(bounded.members)
    }
