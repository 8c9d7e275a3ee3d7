"""Compare two crops: are they the same object? Audited like a search.

An investigator holding two photos (a witness's and a camera's) wants one number and a
verdict that means something: the cosine similarity of the two crops in the embedding
space a search by either would use, and whether it reaches the floor that search would
apply (`SearchService.default_floor`), so "same" here means "a search would match it".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from surveil.domain import Image, InputError, NewAuditEntry, Space, SurveilError
from surveil.ports import AccessStore, BlobStore
from surveil.search.audited import _EXTENSIONS, Actor, crop_key
from surveil.search.by_example import QueryEmbedding
from surveil.search.service import SearchService

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CropInput:
    """One crop to compare: decoded pixels, the bytes as given (for the trail), format."""

    image: Image
    data: bytes
    image_format: str = "JPEG"


@dataclass(frozen=True, slots=True)
class Comparison:
    """The similarity of two crops, the space it was measured in, and the verdict."""

    similarity: float
    space: Space
    threshold: float
    same: bool
    #: Each crop's label and where it came from ("given", "detector" or "default").
    labels: tuple[str | None, str | None] = (None, None)
    label_sources: tuple[str, str] = ("given", "given")

    def to_dict(self) -> dict[str, Any]:
        """The contract object of `surveil compare --json` and POST /api/v1/compare."""
        return {
            "similarity": self.similarity,
            "space": self.space,
            "threshold": self.threshold,
            "same": self.same,
        }

    def verdict(self) -> str:
        """The verdict in words, with the threshold that decided it."""
        word, sign = ("likely", ">=") if self.same else ("unlikely", "<")
        return (
            f"same object {word}: similarity {self.similarity:.3f} {sign} threshold "
            f"{self.threshold:.3f} ({self.space} space)"
        )


def _one_space(a: QueryEmbedding, b: QueryEmbedding) -> Space:
    """The space both crops landed in; two spaces cannot be compared."""
    if a.space == b.space:
        return a.space
    raise InputError(
        f"crop A looks like {a.label or 'an unknown object'} ({a.space} space) and crop B "
        f"like {b.label or 'an unknown object'} ({b.space} space): different embedding "
        "spaces cannot be compared; give --label to embed both in one space"
    )


def compare_crops(search: SearchService, a: Image, b: Image, *, label: str | None) -> Comparison:
    """Embed both crops as a search by each would, and judge them by the search floor."""
    qa = search.embed(a, label=label)
    qb = search.embed(b, label=label)
    space = _one_space(qa, qb)
    similarity = float(np.dot(qa.vector.astype(np.float64), qb.vector.astype(np.float64)))
    similarity = round(max(-1.0, min(1.0, similarity)), 6)
    threshold = float(search.default_floor(space))
    return Comparison(
        similarity=similarity,
        space=space,
        threshold=threshold,
        same=similarity >= threshold,
        labels=(qa.label, qb.label),
        label_sources=(qa.label_source, qb.label_source),
    )


def keep_crop(blobs: BlobStore, crop: CropInput) -> tuple[str, str]:
    """Store a compared crop as searches store theirs; returns (sha256, blob key)."""
    digest = hashlib.sha256(crop.data).hexdigest()
    key = crop_key(digest, _EXTENSIONS.get(crop.image_format, "img"))
    if not blobs.exists(key):
        blobs.put(key, crop.data)
    return digest, key


class AuditedCompare:
    """Compares two crops for an actor and records the comparison in the audit trail."""

    def __init__(self, *, search: SearchService, access: AccessStore, blobs: BlobStore) -> None:
        self._search = search
        self._access = access
        self._blobs = blobs

    def run(
        self, actor: Actor, a: CropInput, b: CropInput, *, label: str | None = None
    ) -> tuple[Comparison, int]:
        """Compare, then audit (both crops' SHA-256 and stored copies); refusals are audited."""
        kept = [keep_crop(self._blobs, a), keep_crop(self._blobs, b)]
        record: dict[str, Any] = {"label": label} if label else {}
        record.update(crop_b_sha256=kept[1][0], crop_b_path=kept[1][1])
        try:
            found = compare_crops(self._search, a.image, b.image, label=label)
        except SurveilError as exc:
            self._audit(actor, kept[0], record, status="refused", detail=str(exc))
            raise
        except Exception as exc:
            self._audit(actor, kept[0], record, status="error", detail=type(exc).__name__)
            raise
        record.update(found.to_dict())
        audit_id = self._audit(actor, kept[0], record, status="ok", detail=found.verdict())
        log.info("compare.done", audit_id=audit_id, actor=actor.name, **found.to_dict())
        return found, audit_id

    def _audit(
        self,
        actor: Actor,
        crop_a: tuple[str, str],
        record: dict[str, Any],
        *,
        status: str,
        detail: str,
    ) -> int:
        return self._access.record(
            NewAuditEntry(
                action="compare",
                key_id=actor.key_id,
                key_name=actor.name,
                role=actor.role,
                status=status,
                query_kind="compare",
                crop_sha256=crop_a[0],
                crop_path=crop_a[1],
                filters=record,
                result_count=None,
                client=actor.client,
                detail=detail[:1000],
            )
        )
