"""The real embedders (OSNet via onnxruntime, MobileNetV2 via torchvision) on real crops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from surveil.config import EmbedderSettings, EmbeddersSettings, Settings
from surveil.domain import ConfigError, Image
from surveil.ports import Embedder
from surveil.vision.crops import read_image
from surveil.vision.device import DevicePlan, choose_device
from surveil.vision.embedder import (
    OnnxEmbedder,
    TorchvisionEmbedder,
    build_embedder,
    bundled_mobilenet_v2_weights,
)

MOT09 = "mot/MOT17-mini/train/MOT17-09-FRCNN"
QUERY = "reid/market1501_person_search_demo/query"

SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="module")
def plan() -> DevicePlan:
    return choose_device("auto", None)


@pytest.fixture(scope="module")
def person(models_dir: Path, plan: DevicePlan) -> Embedder:
    settings = EmbeddersSettings().person
    return build_embedder("person", settings, model_dir=models_dir, device=plan)


@pytest.fixture(scope="module")
def general(models_dir: Path, plan: DevicePlan) -> Embedder:
    settings = EmbeddersSettings().general
    return build_embedder("general", settings, model_dir=models_dir, device=plan)


def _gt_crops(shared_data: Path, frame: int) -> dict[int, Image]:
    """Crops of the fully visible pedestrians of one MOT17-09 frame, by track id."""
    image = read_image(shared_data / MOT09 / "img1" / f"{frame:06d}.jpg")
    rows = np.loadtxt(shared_data / MOT09 / "gt" / "gt.txt", delimiter=",", ndmin=2)
    crops: dict[int, Image] = {}
    for row in rows[(rows[:, 0] == frame) & (rows[:, 7] == 1) & (rows[:, 8] >= 0.7)]:
        left, top = max(int(row[2]), 0), max(int(row[3]), 0)
        crops[int(row[1])] = image[top : int(row[3] + row[5]), left : int(row[2] + row[4])]
    return crops


@pytest.fixture(scope="module")
def frame1(shared_data: Path) -> dict[int, Image]:
    return _gt_crops(shared_data, 1)


@pytest.fixture(scope="module")
def frame2(shared_data: Path) -> dict[int, Image]:
    return _gt_crops(shared_data, 2)


def test_types_and_model_ids(person: Embedder, general: Embedder) -> None:
    assert isinstance(person, OnnxEmbedder) and person.space == "person"
    assert isinstance(general, TorchvisionEmbedder) and general.space == "general"
    assert person.model_id.startswith("osnet_x0_25_msmt17.onnx@")
    assert len(person.model_id.split("@")[1]) == 12
    assert general.model_id.startswith("torchvision:mobilenet_v2@")
    assert (person.dim, general.dim) == (512, 1280)


@pytest.mark.parametrize("which", ["person", "general"])
def test_shapes_norms_and_determinism(
    which: str, request: pytest.FixtureRequest, frame1: dict[int, Image]
) -> None:
    embedder: Embedder = request.getfixturevalue(which)
    crops = list(frame1.values())
    vectors = embedder.embed(crops)
    assert vectors.shape == (len(crops), embedder.dim)
    assert vectors.dtype == np.float32 and vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(embedder.embed(crops), vectors)
    empty = embedder.embed([])
    assert empty.shape == (0, embedder.dim) and empty.dtype == np.float32


@pytest.mark.parametrize("which", ["person", "general"])
def test_batch_equals_one_by_one(
    which: str, request: pytest.FixtureRequest, frame1: dict[int, Image]
) -> None:
    embedder: Embedder = request.getfixturevalue(which)
    crops = list(frame1.values())
    batched = embedder.embed(crops)
    single = np.concatenate([embedder.embed([c]) for c in crops])
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_small_batch_size_splits_the_work(
    models_dir: Path, plan: DevicePlan, person: Embedder, frame1: dict[int, Image]
) -> None:
    settings = EmbeddersSettings().person.model_copy(update={"batch_size": 2})
    small = build_embedder("person", settings, model_dir=models_dir, device=plan)
    crops = list(frame1.values())
    np.testing.assert_allclose(small.embed(crops), person.embed(crops), atol=1e-4)


def test_osnet_same_pedestrian_across_frames_scores_highest(
    person: Embedder, frame1: dict[int, Image], frame2: dict[int, Image]
) -> None:
    ids = sorted(set(frame1) & set(frame2))
    assert len(ids) >= 3
    first = person.embed([frame1[i] for i in ids])
    second = person.embed([frame2[i] for i in ids])
    scores = first @ second.T
    for row, track in enumerate(ids):
        others = np.delete(scores[row], row)
        assert scores[row, row] > others.max(), f"track {track}: {scores[row]}"


def test_market1501_query_pair_is_closer_than_other_people(
    shared_data: Path, person: Embedder, frame1: dict[int, Image]
) -> None:
    queries = sorted((shared_data / QUERY).glob("0001_*.jpg"))
    assert len(queries) == 2
    pair = person.embed([read_image(q) for q in queries])
    others = person.embed(list(frame1.values()))
    same = float(pair[0] @ pair[1])
    assert same > float((pair @ others.T).max())


def test_missing_weights_name_the_setting(make_settings: SettingsFactory, tmp_path: Path) -> None:
    plan = choose_device("cpu", None)
    settings = make_settings(**{"embedders.person.weights": "nope.onnx"})
    with pytest.raises(ConfigError, match="SURVEIL_EMBEDDERS__PERSON__WEIGHTS") as info:
        build_embedder("person", settings.embedders.person, model_dir=tmp_path, device=plan)
    assert "nope.onnx" in str(info.value) and str(tmp_path) in str(info.value)
    resnet = EmbedderSettings(backend="torchvision", arch="resnet18")
    with pytest.raises(ConfigError, match="SURVEIL_EMBEDDERS__GENERAL__WEIGHTS"):
        build_embedder("general", resnet, model_dir=tmp_path, device=plan)
    (tmp_path / "w.pt").write_bytes(b"")
    bad_arch = EmbedderSettings(backend="torchvision", arch="not_a_net", weights="w.pt")
    with pytest.raises(ConfigError, match="SURVEIL_EMBEDDERS__GENERAL__ARCH"):
        build_embedder("general", bad_arch, model_dir=tmp_path, device=plan)


def test_weights_that_do_not_fit_fail_clearly(plan: DevicePlan) -> None:
    wrong = EmbedderSettings(backend="torchvision", arch="resnet18", weights=None)
    weights = bundled_mobilenet_v2_weights()
    assert weights is not None
    resnet = TorchvisionEmbedder("general", wrong, weights=weights, device=plan)
    with pytest.raises(ConfigError, match="do not fit torchvision resnet18"):
        resnet.embed([np.zeros((32, 32, 3), np.uint8)])


def test_model_id_is_stable_across_instances(
    models_dir: Path, plan: DevicePlan, person: Embedder, general: Embedder
) -> None:
    again = EmbeddersSettings()
    p2 = build_embedder("person", again.person, model_dir=models_dir, device=plan)
    g2 = build_embedder("general", again.general, model_dir=models_dir, device=plan)
    assert (p2.model_id, g2.model_id) == (person.model_id, general.model_id)
    assert person.model_id == person.model_id
