"""Byte sizes in settings: '2 TB', '500 GiB' and plain integers; a bad unit names itself."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from surveil.config import Settings
from surveil.config.sizes import parse_size


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("2 TB", 2 * 10**12),
        ("500GiB", 500 * 2**30),
        ("1.5 kb", 1500),
        ("  42  ", 42),
        (1_048_576, 1_048_576),
    ],
)
def test_sizes_as_operators_write_them(written: object, size: int) -> None:
    assert parse_size(written) == size


def test_the_budget_setting_takes_units_and_refuses_nonsense() -> None:
    settings = Settings.model_validate(
        {"retention": {"max_bytes": "2 TB", "camera_max_bytes": {"gate": "100 GB"}}}
    )
    assert settings.retention.max_bytes == 2 * 10**12
    assert settings.retention.camera_max_bytes == {"gate": 100 * 10**9}
    with pytest.raises(ValidationError, match="unknown size unit 'parsecs'"):
        Settings.model_validate({"retention": {"max_bytes": "3 parsecs"}})
    with pytest.raises(ValidationError, match="greater than 0"):
        Settings.model_validate({"retention": {"max_bytes": 0}})
