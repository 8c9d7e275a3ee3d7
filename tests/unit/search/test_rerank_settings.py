"""search.rerank: named `lambda` in files, the environment and `config show`; bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SettingsFactory

from surveil.config import load_settings, setting_sources
from surveil.domain import ConfigError


def test_lambda_is_spelled_lambda_everywhere(
    make_settings: SettingsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_settings()  # clears SURVEIL_* from the environment
    cfg = tmp_path / "s.yaml"
    cfg.write_text("search:\n  rerank:\n    mode: k_reciprocal\n    lambda: 0.5\n")
    monkeypatch.setenv("SURVEIL_SEARCH__RERANK__K1", "12")
    s = load_settings(cfg)
    assert (s.search.rerank.mode, s.search.rerank.lambda_, s.search.rerank.k1) == (
        "k_reciprocal",
        0.5,
        12,
    )
    shown = {name: (value, origin) for name, value, origin in setting_sources(s, cfg)}
    assert shown["search.rerank.lambda"] == (0.5, f"file {cfg}")
    assert shown["search.rerank.k1"] == (12, "environment SURVEIL_SEARCH__RERANK__K1")


def test_a_bad_rerank_setting_is_refused_by_name(make_settings: SettingsFactory) -> None:
    make_settings()
    with pytest.raises(ConfigError, match=r"search\.rerank\.mode"):
        load_settings(overrides={"search.rerank.mode": "fancy"})
    with pytest.raises(ConfigError, match=r"search\.rerank\.lambda"):
        load_settings(overrides={"search.rerank.lambda": 2})
