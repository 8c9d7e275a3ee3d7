"""Which cameras `surveil run` reads: settings' `cameras:` plus the catalog's cameras table.

URLs may hold `${NAME}` placeholders, filled from the environment or the secrets file,
so that passwords live outside the YAML and the catalog. The filled URL is only ever
handed to the decoder: everything shown or logged uses `LiveCamera.safe_url`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from surveil.config import CameraSettings, KeyframeSettings, LiveSettings, Settings
from surveil.domain import (
    CameraInfo,
    ConfigError,
    InputError,
    mask_credentials,
    validate_camera_id,
    validate_tags,
)

log = structlog.get_logger(__name__)

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SourceKind = Literal["file", "stream", "device"]


@dataclass(frozen=True)
class LiveCamera:
    """A camera ready to read: the URL with secrets filled in, and a safe one to show."""

    id: str
    name: str
    url: str
    safe_url: str
    kind: SourceKind
    keyframes: KeyframeSettings
    #: Labels that workers pinned with `live.camera_tags` look for.
    tags: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never print the filled URL by accident
        return f"LiveCamera(id={self.id!r}, url={self.safe_url!r}, kind={self.kind!r})"


def load_secrets(path: Path | None) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments ignored) from the secrets file."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read live.secrets_file {path}: {exc.strerror}; fix the path or unset it"
        ) from exc
    secrets: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE (the value is not shown)")
        secrets[key.strip()] = value.strip()
    return secrets


def expand(url: str, *, camera_id: str, env: Mapping[str, str], secrets: Mapping[str, str]) -> str:
    """Fill `${NAME}` from the environment, else the secrets file; a missing name fails."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in env:
            return env[name]
        if name in secrets:
            return secrets[name]
        raise ConfigError(
            f"camera {camera_id!r}: URL placeholder ${{{name}}} is not set; export {name} "
            "or add it to live.secrets_file"
        )

    return _PLACEHOLDER.sub(fill, url)


def source_kind(url: str) -> SourceKind:
    """A device index or /dev path, a network stream, or (anything else) a local file."""
    lowered = url.lower()
    if url.isdigit() or lowered.startswith("/dev/"):
        return "device"
    if "://" in lowered and not lowered.startswith("file://"):
        return "stream"
    return "file"


def _policy(base: KeyframeSettings, override: KeyframeSettings | None) -> KeyframeSettings:
    """The camera's keyframe policy: only the keys it sets replace the global ones."""
    if override is None:
        return base
    return base.model_copy(update=override.model_dump(exclude_unset=True))


def _live(
    cam: CameraSettings, settings: Settings, env: Mapping[str, str], secrets: Mapping[str, str]
) -> LiveCamera:
    validate_camera_id(cam.id)
    url = expand(cam.url, camera_id=cam.id, env=env, secrets=secrets)
    if url.lower().startswith("file://"):
        url = url[len("file://") :]
    return LiveCamera(
        id=cam.id,
        name=cam.name or cam.id,
        url=url,
        safe_url=mask_credentials(url),
        kind=source_kind(url),
        keyframes=_policy(settings.keyframes, cam.keyframes),
        tags=_tags(cam),
    )


def _tags(cam: CameraSettings) -> tuple[str, ...]:
    try:
        return validate_tags(cam.tags)
    except InputError as exc:
        raise ConfigError(f"camera {cam.id!r}: {exc}") from None


def live_cameras(
    settings: Settings,
    catalog_cameras: Sequence[CameraInfo] = (),
    *,
    env: Mapping[str, str] | None = None,
) -> list[LiveCamera]:
    """Enabled cameras from settings, then enabled catalog cameras with a URL (settings win)."""
    environ = os.environ if env is None else env
    secrets = load_secrets(settings.live.secrets_file)
    chosen: dict[str, CameraSettings] = {}
    for cam in settings.cameras:
        if cam.id in chosen:
            raise ConfigError(f"camera {cam.id!r} is listed twice in `cameras:`")
        chosen[cam.id] = cam
    if settings.live.from_catalog:
        for info in catalog_cameras:
            if info.id not in chosen and info.url:
                chosen[info.id] = CameraSettings(
                    id=info.id,
                    url=info.url,
                    name=info.name,
                    enabled=info.enabled,
                    tags=list(info.tags),
                )
    return [_live(c, settings, environ, secrets) for c in chosen.values() if c.enabled]


def pinned(cameras: Sequence[LiveCamera], live: LiveSettings) -> list[LiveCamera]:
    """The cameras this worker may read: `live.cameras` ids and/or `live.camera_tags`.

    No pins: every camera. A pinned id that is not an enabled camera is only logged - the
    API may add it later.
    """
    ids, tags = set(live.cameras), set(live.camera_tags)
    missing = ids - {c.id for c in cameras}
    if missing:
        log.warning("live.pinned_camera_unknown", cameras=sorted(missing))
    return [c for c in cameras if (not ids or c.id in ids) and (not tags or tags & set(c.tags))]
