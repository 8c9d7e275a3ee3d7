"""Webhook notifications: the JSON payload, its HMAC signature, retry timing, the POST.

Receivers verify `X-Surveil-Signature: sha256=<hex>`, the HMAC-SHA256 of
`<X-Surveil-Timestamp>.<body>` keyed with the rule's secret; the timestamp inside the
signed text lets them refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from surveil import __version__
from surveil.alerts.model import Alert
from surveil.alerts.targets import WebhookPolicy

SIGNATURE_HEADER = "X-Surveil-Signature"
TIMESTAMP_HEADER = "X-Surveil-Timestamp"
#: 408 and 429 ask to come back later; other 4xx mean the request itself is refused.
RETRYABLE_4XX = frozenset({408, 425, 429})


def payload(alert: Alert, *, delivery_id: int, sent_at: datetime) -> bytes:
    """The webhook body: the alert object plus where to fetch its crop."""
    body = {
        "event": "alert",
        "delivery_id": delivery_id,
        "sent_at": sent_at.isoformat(),
        "alert": alert.to_dict(),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` over `<timestamp>.<body>`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(*, delivery_id: int, body: bytes, secret: str | None, now: float) -> dict[str, str]:
    """Request headers; signed when the rule has a secret."""
    timestamp = str(int(now))
    out = {
        "Content-Type": "application/json",
        "User-Agent": f"surveil/{__version__}",
        "X-Surveil-Event": "alert",
        "X-Surveil-Delivery": str(delivery_id),
        TIMESTAMP_HEADER: timestamp,
    }
    if secret:
        out[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return out


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before retry `attempt` (1 = first retry): doubling, capped, "equal jitter".

    Half the delay is fixed and half random, so receivers recovering from an outage are
    not hit by every sender at the same instant, yet retries never come early.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return float(delay / 2 + (rng or random).uniform(0, delay / 2))


def retryable(status: int | None) -> bool:
    """Whether a failed POST is worth repeating (network errors and 5xx are)."""
    return status is None or status >= 500 or status in RETRYABLE_4XX


@dataclass(frozen=True)
class PostResult:
    """What came back from one POST."""

    status_code: int | None
    error: str | None
    seconds: float
    #: Not sent at all: the destination is not allowed (retrying cannot help).
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """POSTs signed JSON; one pooled client for every delivery."""

    def __init__(self, *, timeout: float, policy: WebhookPolicy | None = None) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._policy = policy or WebhookPolicy(())

    def post(self, url: str, body: bytes, request_headers: Mapping[str, str]) -> PostResult:
        """One attempt; network errors and refused destinations come back as a result."""
        started = time.perf_counter()
        why = self._policy.refusal(url)
        if why is not None:
            return PostResult(None, why, 0.0, refused=True)
        try:
            response = self._client.post(url, content=body, headers=dict(request_headers))
        except httpx.HTTPError as exc:
            return PostResult(None, f"{type(exc).__name__}: {exc}"[:500], _since(started))
        error = None if response.is_success else f"HTTP {response.status_code}"
        return PostResult(response.status_code, error, _since(started))

    def close(self) -> None:
        self._client.close()


def _since(started: float) -> float:
    return time.perf_counter() - started


def describe(result: PostResult) -> Mapping[str, Any]:
    """Log fields of one attempt."""
    return {
        "status": result.status_code,
        "error": result.error,
        "seconds": round(result.seconds, 3),
    }
