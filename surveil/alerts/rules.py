"""Creating and removing rules: examples are embedded once, stored, and kept with the rule.

Every example of a rule must land in one embedding space (persons or everything else),
since scores from different models do not compare; the space comes from the rule's
labels, else the detector's label for the first example, as in search.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from surveil.alerts.model import Rule, RuleSpec
from surveil.alerts.targets import WebhookPolicy
from surveil.domain import Image, InputError, Space, space_for
from surveil.ports import BlobStore, Detector, Embedder
from surveil.search.by_example import embed_example
from surveil.storage.alerts import NewExample, SqlAlerts
from surveil.vision.crops import encode_jpeg


@dataclass(frozen=True)
class ExampleImage:
    """A decoded example crop and the bytes it came in (hashed; the JPEG copy is stored)."""

    image: Image
    data: bytes


def example_key(digest: str) -> str:
    """Blob key of a rule example: content-addressed under rules/, never built from input."""
    return f"rules/{digest[:2]}/{digest}.jpg"


class RuleService:
    """Rules over the catalog's alert store, the blob store and the embedders."""

    def __init__(
        self,
        *,
        alerts: SqlAlerts,
        blobs: BlobStore,
        embedder_for: Callable[[Space], Embedder],
        detector: Callable[[], Detector],
        person_labels: Sequence[str],
        jpeg_quality: int,
        webhooks: WebhookPolicy | None = None,
    ) -> None:
        self._alerts = alerts
        self._blobs = blobs
        self._embedder_for = embedder_for
        self._detector = detector
        self._person_labels = tuple(person_labels)
        self._jpeg_quality = jpeg_quality
        self._webhooks = webhooks or WebhookPolicy(())

    def _space(self, spec: RuleSpec, first: Image) -> Space:
        spaces = {space_for(label, self._person_labels) for label in spec.labels}
        if len(spaces) > 1:
            raise InputError(
                "the rule's labels mix persons with other objects, which live in different "
                "embedding spaces; make one rule for each"
            )
        if spaces:
            return spaces.pop()
        guess = embed_example(
            first,
            label=None,
            person_labels=self._person_labels,
            embedder_for=self._embedder_for,
            detector=self._detector,
        )
        return guess.space

    def create(self, spec: RuleSpec, examples: Sequence[ExampleImage], *, created_by: str) -> Rule:
        """Embed and store the examples, then the rule (watermark = newest appearance)."""
        if not examples:
            raise InputError("give at least one example crop (--example)")
        self._webhooks.check(spec.webhooks)
        space = self._space(spec, examples[0].image)
        embedder = self._embedder_for(space)
        label = spec.labels[0] if spec.labels else ("person" if space == "person" else None)
        stored: list[NewExample] = []
        for ex in examples:
            query = embed_example(
                ex.image,
                label=label,
                person_labels=self._person_labels,
                embedder_for=self._embedder_for,
                detector=None,
            )
            digest = hashlib.sha256(ex.data).hexdigest()
            key = example_key(digest)
            if not self._blobs.exists(key):
                self._blobs.put(key, encode_jpeg(ex.image, self._jpeg_quality))
            stored.append(NewExample(key, digest, embedder.model_id, query.vector))
        return self._alerts.create_rule(spec, space=space, examples=stored, created_by=created_by)

    def update(self, rule_id: int, spec: RuleSpec) -> Rule:
        """Save changed settings (examples and watermark stay), held to the webhook policy."""
        self._webhooks.check(spec.webhooks)
        return self._alerts.update_rule(rule_id, spec)

    def delete(self, rule_id: int) -> None:
        """Delete the rule and its alerts; example files go when no other rule uses them."""
        paths = self._alerts.delete_rule(rule_id)
        in_use = {e.crop_path for r in self._alerts.list_rules() for e in r.examples}
        for path in set(paths) - in_use:
            self._blobs.delete(path)
