"""Byte sizes as operators write them ("2 TB", "500GiB", 1048576) for size settings."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: object) -> object:
    """'2 TB' -> 2_000_000_000_000 (SI), '1.5GiB' -> bytes (binary); ints pass through.

    Anything else is handed on unchanged, so pydantic's own error names the field.
    """
    if not isinstance(value, str):
        return value
    match = _SIZE.match(value)
    if match is None:
        return value
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"unknown size unit {unit!r}: use B, KB, MB, GB, TB or KiB..TiB")
    return int(float(number) * factor)


#: An int of bytes that settings files and environment variables may write with a unit.
ByteSize = Annotated[int, BeforeValidator(parse_size)]
