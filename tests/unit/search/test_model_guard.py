"""The model guard over real embedder files (never loaded) and a space-model table in memory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from surveil.config.models import PersonEmbedderSettings
from surveil.domain import ModelMismatchError, Space, SpaceModel
from surveil.ports import Embedder
from surveil.search.model_guard import ModelGuard
from surveil.vision.device import choose_device
from surveil.vision.embedder import build_embedder

CPU = choose_device("cpu", None)


class Models:
    """The `space_models` rows, in memory (the SQL one is exercised in test_reembed.py)."""

    def __init__(self) -> None:
        self.rows: dict[str, SpaceModel] = {}

    def get(self, space: Space) -> SpaceModel | None:
        return self.rows.get(space)


def _embedder(weights: Path) -> Embedder:
    settings = PersonEmbedderSettings(weights=str(weights))
    return build_embedder("person", settings, model_dir=weights.parent, device=CPU)


def _spec(weights: Path) -> str:
    return json.dumps({**PersonEmbedderSettings().model_dump(mode="json"), "weights": str(weights)})


@pytest.fixture
def files(models_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The real OSNet file as the old model, a copy under another name as the new one."""
    old = tmp_path / "osnet_old.onnx"
    new = tmp_path / "osnet_new.onnx"
    shutil.copy(models_dir / "osnet_x0_25_msmt17.onnx", old)
    shutil.copy(old, new)
    return old, new


def _spec_embedder(space: Space, spec: str) -> Embedder:
    return _embedder(Path(json.loads(spec)["weights"]))


def _guard(models: Models, configured: Path) -> ModelGuard:
    return ModelGuard(models, lambda space: _embedder(configured), _spec_embedder)


def test_the_configured_model_serves_its_own_space_and_a_new_one(files: tuple[Path, Path]) -> None:
    old, _ = files
    models = Models()
    guard = _guard(models, old)
    assert guard.embedder("person").weights == old  # type: ignore[attr-defined]
    models.rows["person"] = SpaceModel("person", _embedder(old).model_id, 512)
    assert guard.embedder("person").model_id == models.rows["person"].model_id


def test_a_changed_model_is_refused_naming_reembed(files: tuple[Path, Path]) -> None:
    old, new = files
    models = Models()
    models.rows["person"] = SpaceModel("person", _embedder(old).model_id, 512, _spec(old))
    with pytest.raises(ModelMismatchError, match=r"run `surveil index reembed --space person`"):
        _guard(models, new).embedder("person")
    with pytest.raises(ModelMismatchError, match=r"alert rule .x. holds vectors of model other@1"):
        _guard(models, old).require("person", {"other@1"}, "alert rule 'x'")


def test_during_a_reembed_the_old_model_serves_until_its_file_is_gone(
    files: tuple[Path, Path],
) -> None:
    old, new = files
    old_id, new_id = _embedder(old).model_id, _embedder(new).model_id
    models = Models()
    models.rows["person"] = SpaceModel("person", old_id, 512, _spec(old), pending_model_id=new_id)
    assert _guard(models, new).embedder("person").model_id == old_id
    old.unlink()
    with pytest.raises(ModelMismatchError, match=r"no longer available.*resume when"):
        _guard(models, new).embedder("person")


def test_between_swap_and_index_rebuild_searches_wait(files: tuple[Path, Path]) -> None:
    _, new = files
    models = Models()
    models.rows["person"] = SpaceModel("person", _embedder(new).model_id, 512, index_stale=True)
    with pytest.raises(ModelMismatchError, match="being rebuilt"):
        _guard(models, new).embedder("person")


def test_a_rule_is_refused_after_a_model_change_but_scored_during_a_reembed(
    files: tuple[Path, Path],
) -> None:
    old, new = files
    old_id, new_id = _embedder(old).model_id, _embedder(new).model_id
    models = Models()
    models.rows["person"] = SpaceModel("person", old_id, 512)
    with pytest.raises(ModelMismatchError, match=r"before alert rule 'x' is evaluated again"):
        _guard(models, new).require("person", {old_id}, "alert rule 'x'")
    # Under way, its examples and the stored vectors agree: scored even with the file gone.
    models.rows["person"] = SpaceModel("person", old_id, 512, pending_model_id=new_id)
    old.unlink()
    _guard(models, new).require("person", {old_id}, "alert rule 'x'")


def test_a_search_from_stored_vectors_needs_no_model_file_but_waits_for_a_rebuild(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    old, new = files
    models = Models()
    models.rows["person"] = SpaceModel("person", _embedder(old).model_id, 512)
    _guard(models, old).check_stored("person")
    with pytest.raises(ModelMismatchError, match=r"run `surveil index reembed --space person`"):
        _guard(models, new).check_stored("person")
    gone = ModelGuard(models, lambda space: _embedder(tmp_path / "nowhere.onnx"), _spec_embedder)
    gone.check_stored("person")  # the stored vectors and the index agree
    models.rows["person"] = SpaceModel("person", _embedder(new).model_id, 512, index_stale=True)
    with pytest.raises(ModelMismatchError, match="being rebuilt"):
        _guard(models, new).check_stored("person")
