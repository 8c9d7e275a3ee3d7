"""Evidence export settings: how archives are signed."""

from __future__ import annotations

from pydantic import Field, SecretStr

from surveil.config.base import Section


class ExportSettings(Section):
    hmac_key: SecretStr | None = Field(
        None,
        min_length=16,
        title="Evidence signing key",
        description=(
            "Secret that signs each evidence archive's SHA256SUMS (HMAC-SHA256, in "
            "SHA256SUMS.hmac); `surveil export verify` then also detects an archive whose "
            "hashes were recomputed after tampering. Prefer SURVEIL_EXPORT__HMAC_KEY. "
            "Unset: archives carry hashes only. Never logged or shown."
        ),
    )
