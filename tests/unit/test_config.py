"""Settings: YAML + environment, refusal of unknown keys and bad values, naming the key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
import yaml
from conftest import REPO, SettingsFactory
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from surveil.config import Settings, load_settings
from surveil.domain import ConfigError


@pytest.fixture
def clean_env(make_settings: SettingsFactory) -> None:
    """make_settings clears SURVEIL_* from the environment; reuse that."""


def test_documented_default_config_matches_the_code(clean_env: None) -> None:
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    assert Settings(**data) == Settings()


def test_postgres_example_config_loads(clean_env: None) -> None:
    s = load_settings(REPO / "configs" / "postgres.example.yaml")
    assert s.database_url.startswith("postgresql+psycopg://")
    assert s.logging.format == "json"


def test_env_overrides_yaml_with_nested_keys(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("detector:\n  weights: from-yaml.pt\n  confidence: 0.5\n")
    monkeypatch.setenv("SURVEIL_CONFIG", str(cfg))
    monkeypatch.setenv("SURVEIL_DETECTOR__WEIGHTS", "from-env.onnx")
    monkeypatch.setenv("SURVEIL_DATABASE__URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("SURVEIL_STORAGE__ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("SURVEIL_EMBEDDERS__PERSON__WEIGHTS", "/m/osnet.onnx")
    s = load_settings()
    assert s.detector.weights == "from-env.onnx"
    assert s.detector.confidence == 0.5  # from YAML, not overridden
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.storage.root == tmp_path / "root"
    assert s.embedders.person.weights == "/m/osnet.onnx"
    assert s.embedders.general.backend == "torchvision"  # sibling defaults survive


def test_sqlite_is_the_embedded_default(clean_env: None, tmp_path: Path) -> None:
    s = load_settings(overrides={"storage.root": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path.as_posix()}/catalog.db"


def test_unknown_yaml_key_is_refused_by_name(clean_env: None, tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("detector:\n  wieghts: x.pt\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'detector\.wieghts'"):
        load_settings(cfg)


def test_unknown_env_key_is_refused_by_name(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEIL_DETECTR__WEIGHTS", "x.pt")
    with pytest.raises(ConfigError, match="SURVEIL_DETECTR__WEIGHTS"):
        load_settings()


def test_unknown_nested_env_key_is_refused(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEIL_DETECTOR__WEIGHT", "x.pt")
    with pytest.raises(ConfigError, match=r"detector\.weight"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "value", "key"),
    [
        ("SURVEIL_DETECTOR__CONFIDENCE", "1.5", "detector.confidence"),
        ("SURVEIL_DETECTOR__IMAGE_SIZE", "650", "detector.image_size"),
        ("SURVEIL_INGEST__BATCH_SIZE", "zero", "ingest.batch_size"),
        ("SURVEIL_LOGGING__LEVEL", "LOUD", "logging.level"),
    ],
)
def test_bad_values_name_the_key_and_env_var(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert key in str(err.value)
    assert env in str(err.value)


def test_missing_or_broken_config_file(clean_env: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(scalar)


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    for name, info in model.model_fields.items():
        yield prefix + name, info
        inner = info.annotation
        for arg in (inner, *get_args(inner)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _fields(arg, f"{prefix}{name}.")


def test_every_setting_is_titled_and_described() -> None:
    missing = [key for key, info in _fields(Settings) if not (info.title and info.description)]
    assert missing == []


def test_milvus_backend_is_selected_by_the_environment_and_its_token_never_shown(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surveil.config import setting_sources

    monkeypatch.setenv("SURVEIL_INDEX__BACKEND", "milvus")
    monkeypatch.setenv("SURVEIL_INDEX__MILVUS__URI", "http://milvus.example:19530")
    monkeypatch.setenv("SURVEIL_INDEX__MILVUS__TOKEN", "root:s3cret-value")
    s = load_settings(overrides={"storage.root": str(tmp_path)})
    assert s.index.backend == "milvus"
    assert s.index.milvus.uri == "http://milvus.example:19530"
    assert s.index.milvus.resolved_token() == "root:s3cret-value"
    shown = setting_sources(s)
    assert ("index.milvus.token", "**********", "environment SURVEIL_INDEX__MILVUS__TOKEN") in shown
    assert "s3cret" not in repr(shown) + repr(s) + str(s)


def test_milvus_token_comes_from_a_file_and_a_missing_file_says_what_to_do(
    clean_env: None, tmp_path: Path
) -> None:
    secret = tmp_path / "milvus-token"
    secret.write_text("root:from-file\n")
    s = load_settings(overrides={"index.milvus.token_file": str(secret)})
    assert s.index.milvus.resolved_token() == "root:from-file"
    gone = load_settings(overrides={"index.milvus.token_file": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match=r"token_file .*nope.*SURVEIL_INDEX__MILVUS__TOKEN"):
        gone.index.milvus.resolved_token()


def test_an_unknown_index_backend_or_index_type_is_refused_by_name(clean_env: None) -> None:
    with pytest.raises(ConfigError, match=r"index\.backend"):
        load_settings(overrides={"index.backend": "annoy"})
    with pytest.raises(ConfigError, match=r"index\.milvus\.index_type"):
        load_settings(overrides={"index.milvus.index_type": "DISKANN"})
