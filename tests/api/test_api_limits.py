"""Input limits: oversized bodies, decompression bombs and non-images never reach a model."""

from __future__ import annotations

import io
import socket
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from api_world import ApiWorld, LiveServer
from fastapi.testclient import TestClient

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _post_image(client: TestClient, world: ApiWorld, data: bytes, name: str = "x.jpg") -> object:
    return client.post(
        "/api/v1/search",
        headers=world.auth("operator"),
        files={"image": (name, io.BytesIO(data), "application/octet-stream")},
    )


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _audit_count(world: ApiWorld) -> int:
    return len(world.services.access.audit_entries(action="search", limit=100_000))


def test_upload_over_the_size_limit_is_413(client: TestClient, api_world: ApiWorld) -> None:
    too_big = b"\xff\xd8" + b"\x00" * (api_world.settings.api.max_upload_bytes + 10)
    response = _post_image(client, api_world, too_big)
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert response.json()["error"]["code"] == "payload_too_large"  # type: ignore[attr-defined]


def test_streamed_body_without_length_is_cut_off(
    live_server: LiveServer, api_world: ApiWorld
) -> None:
    """A chunked upload (no Content-Length) is refused once it passes the limit, and the
    refused attempt is audited (the server thread may write that after the reply)."""
    host, port = live_server.base_url.removeprefix("http://").split(":")
    before = _audit_count(api_world)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            "POST /api/v1/search HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {live_server.keys['operator']}\r\n"
            "Content-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        part = (
            b'--B\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        sock.sendall(head.encode() + f"{len(part):x}\r\n".encode() + part + b"\r\n")
        piece = b"A" * 65536
        try:
            for _ in range(64):  # 4 MiB, twice the test limit
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: that is the point
        reply = sock.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    deadline = time.monotonic() + 30
    while _audit_count(api_world) == before:
        assert time.monotonic() < deadline, "the refused upload was never audited"
        time.sleep(0.1)
    [entry] = api_world.services.access.audit_entries(action="search", limit=1)
    assert entry.entry.status == "refused" and (entry.entry.detail or "").startswith("HTTP 413")


def test_decompression_bomb_is_refused_before_decoding(
    client: TestClient, api_world: ApiWorld
) -> None:
    before = _audit_count(api_world)
    bomb = _png_header_only(60_000, 60_000)  # 3.6 gigapixels declared in ~100 bytes
    response = _post_image(client, api_world, bomb, "bomb.png")
    assert response.status_code == 422  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "image_too_large" and "api.max_image_pixels" in error["message"]
    # Refused at the door (nothing decoded, no search ran), and audited as refused.
    assert _audit_count(api_world) == before + 1
    [entry] = api_world.services.access.audit_entries(action="search", limit=1)
    assert entry.entry.status == "refused" and (entry.entry.detail or "").startswith("HTTP 422")


def test_image_just_over_the_pixel_limit_is_refused(
    client: TestClient, api_world: ApiWorld
) -> None:
    side = int(api_world.settings.api.max_image_pixels**0.5) + 10
    ok, png = cv2.imencode(".png", np.zeros((side, side, 3), np.uint8))
    assert ok
    response = _post_image(client, api_world, png.tobytes(), "big.png")
    assert response.status_code == 422  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"%PDF-1.4\n%...",
        b"\xff\xd8\xff\xe0" + b"\x00" * 100,  # JPEG magic, garbage body
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",  # a real format we do not take
    ],
)
def test_non_images_are_415(client: TestClient, api_world: ApiWorld, data: bytes) -> None:
    response = _post_image(client, api_world, data)
    assert response.status_code in (415, 400)  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"]["code"] in ("unsupported_media_type", "invalid_input")


def test_image_field_as_text_is_400(client: TestClient, api_world: ApiWorld) -> None:
    response = client.post(
        "/api/v1/search", headers=api_world.auth("operator"), data={"image": "hello"}
    )
    assert response.status_code == 400


def test_path_like_ids_never_reach_the_file_system(client: TestClient, api_world: ApiWorld) -> None:
    viewer = api_world.auth("viewer")
    for path in [
        "/api/v1/appearances/..%2F..%2Fetc%2Fpasswd/crop.jpg",
        "/api/v1/keyframes/%2e%2e.jpg",
        "/api/v1/keyframes/-1.jpg",
        "/api/v1/appearances/1e3/crop.jpg",
    ]:
        response = client.get(path, headers=viewer)
        assert response.status_code in (400, 404), path


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/alerts", {"camera": "lobby\x00"}),
        ("/api/v1/audit", {"action": "search\x00"}),
    ],
)
def test_a_nul_character_in_a_text_filter_is_400_not_500(
    client: TestClient, api_world: ApiWorld, path: str, params: dict[str, str]
) -> None:
    """PostgreSQL cannot compare text holding NUL: refused as input, never a server error."""
    response = client.get(path, params=params, headers=api_world.auth("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_input"
