"""Untrusted image bytes: format by magic, size from the header, decode only what fits."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from surveil.vision.images import (
    ImageTooLargeError,
    UnsupportedImageError,
    decode_untrusted,
    probe_image,
)


def _encode(ext: str, h: int = 20, w: int = 30) -> bytes:
    ok, buf = cv2.imencode(ext, np.full((h, w, 3), 127, np.uint8))
    assert ok
    return bytes(buf.tobytes())


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("ext", "fmt"), [(".jpg", "JPEG"), (".png", "PNG"), (".webp", "WEBP"), (".bmp", "BMP")]
)
def test_accepted_formats_probe_and_decode(ext: str, fmt: str) -> None:
    data = _encode(ext)
    header = probe_image(data)
    assert (header.format, header.width, header.height) == (fmt, 30, 20)
    assert decode_untrusted(data, max_pixels=600).shape == (20, 30, 3)


def test_pixel_limit_is_checked_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match=r"api\.max_image_pixels"):
        decode_untrusted(_encode(".png"), max_pixels=599)
    with pytest.raises(ImageTooLargeError):
        decode_untrusted(_png_declaring(100_000, 100_000), max_pixels=10**9)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"GIF89a" + b"\x00" * 20, b"\xff\xd8\xff" + b"\x00" * 50, b"%PDF-1.7"],
)
def test_other_bytes_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedImageError):
        decode_untrusted(data, max_pixels=10**6)
