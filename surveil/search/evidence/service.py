"""Export a sighting, a past search or an alert as one evidence archive, audited.

Nothing is re-run: a search export shows the sightings the audit trail recorded for that
search (audit_hits) and the path across cameras they make, a sighting export the track's
stored members, an alert export the alert's appearance and its track's members in the
alert's time span, with the rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from surveil import __version__
from surveil.alerts.model import Alert, Rule
from surveil.domain import InputError, NewAuditEntry, NotFoundError, SearchFilters, SurveilError
from surveil.ports import AccessStore, BlobStore, Catalog
from surveil.search.audited import Actor
from surveil.search.evidence.archive import sha256, write_archive
from surveil.search.evidence.collect import Bundle, audit_record, extension, path_of
from surveil.search.evidence.report import render_report

log = structlog.get_logger(__name__)

FORMAT = "surveil-evidence/1"


class AlertSource(Protocol):
    """The alert store, as far as an export reads it."""

    def get_alert(self, alert_id: int) -> Alert: ...

    def get_rule(self, rule_id: int) -> Rule: ...


@dataclass(frozen=True, slots=True)
class Exported:
    """An archive written: where, its SHA-256, how many items, and the audit row."""

    path: Path
    sha256: str
    items: int
    missing: int
    audit_id: int


def _filters(record: dict[str, Any]) -> SearchFilters:
    """The search's own filters, so a sighting shows the members the search showed."""
    since, until = record.get("since"), record.get("until")
    return SearchFilters(
        cameras=frozenset(record.get("cameras", ())),
        labels=frozenset(record.get("labels", ())),
        since=datetime.fromisoformat(since) if since else None,
        until=datetime.fromisoformat(until) if until else None,
    )


class EvidenceExporter:
    """Builds evidence archives from the catalog and blob store, and audits each export."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        blobs: BlobStore,
        access: AccessStore,
        alerts: AlertSource,
        hmac_key: bytes | None = None,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._access = access
        self._alerts = alerts
        self._hmac_key = hmac_key

    def export(self, actor: Actor, kind: str, subject_id: int, out: Path) -> Exported:
        """Export `kind` ("sighting", "search" or "alert") `subject_id` to `out`, audited."""
        given = {"kind": kind, "id": subject_id}
        try:
            bundle = Bundle(self._catalog, self._blobs)
            build = {"sighting": self._sighting, "search": self._search, "alert": self._alert}
            if kind not in build:
                raise InputError(f"cannot export {kind!r}: give sighting, search or alert")
            subject, query = build[kind](bundle, subject_id)
            manifest = self._manifest(actor, kind, subject, query, bundle)
            files = sorted(bundle.files.items())
            hashed = {n: {"sha256": sha256(d), "bytes": len(d)} for n, d in files}
            report = render_report({**manifest, "files": hashed})
            write_archive(out, files, manifest, report, hmac_key=self._hmac_key)
        except SurveilError as exc:
            self._audit(actor, given, status="refused", detail=str(exc))
            raise
        except Exception as exc:
            self._audit(actor, given, status="error", detail=type(exc).__name__)
            raise
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        record = {**given, "items": len(bundle.items), "archive_sha256": digest}
        audit_id = self._audit(actor, record, status="ok", detail=f"{kind} {subject_id}")
        log.info("export.done", audit_id=audit_id, actor=actor.name, **record)
        return Exported(out, digest, len(bundle.items), len(bundle.missing), audit_id)

    def _manifest(
        self,
        actor: Actor,
        kind: str,
        subject: dict[str, Any],
        query: dict[str, Any] | None,
        bundle: Bundle,
    ) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": kind,
            "subject": subject,
            "query": query,
            "exported_by": {
                "name": actor.name,
                "role": actor.role,
                "key_id": actor.key_id,
                "client": actor.client,
            },
            "exported_at": datetime.now(UTC).isoformat(),
            "surveil_version": __version__,
            "model_ids": sorted(bundle.model_ids),
            "items": bundle.items,
            "missing": bundle.missing,
        }

    def _sighting(self, bundle: Bundle, track_id: int) -> tuple[dict[str, Any], None]:
        found = self._catalog.tracks([track_id])
        if not found:
            raise NotFoundError(f"no track with id {track_id} (see `surveil tracks list`)")
        track = found[0]
        for appearance in self._catalog.track_members([track_id]).get(track_id, []):
            bundle.add(appearance, None)
        subject = {
            "id": track.id,
            "camera_id": track.camera_id,
            "label": track.label,
            "first_ts": track.first_ts.isoformat(),
            "last_ts": track.last_ts.isoformat(),
            "appearances": track.appearances,
        }
        return subject, None

    def _search(self, bundle: Bundle, audit_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        entry = self._access.audit_entry(audit_id)
        if entry.entry.action != "search" or entry.entry.status != "ok":
            raise InputError(
                f"audit entry {audit_id} is a {entry.entry.status} {entry.entry.action}, "
                "not a search that returned results"
            )
        hits = self._access.audit_hits(audit_id)
        if not hits and entry.entry.result_count:
            raise InputError(
                f"search {audit_id} predates the recording of returned sightings; "
                "run it again and export the new search's audit id"
            )
        members = self._catalog.track_members(
            [t for t, _ in hits], filters=_filters(entry.entry.filters)
        )
        for track_id, score in hits:
            for appearance in members.get(track_id, []):
                bundle.add(appearance, score)
            if not members.get(track_id):
                bundle.missing.append(f"track {track_id} (deleted since the search)")
        query = audit_record(entry)
        crop_key = entry.entry.crop_path
        if crop_key and entry.entry.crop_sha256:
            name = f"query/{entry.entry.crop_sha256[:16]}.{extension(crop_key)}"
            query["crop"] = bundle.blob(crop_key, name)
        subject = {
            "id": audit_id,
            "sightings": [{"track_id": t, "score": s} for t, s in hits],
            "path": path_of(bundle.items),
        }
        return subject, query

    def _alert(self, bundle: Bundle, alert_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        alert = self._alerts.get_alert(alert_id)
        rule = self._alerts.get_rule(alert.rule_id)
        found = self._catalog.appearances([alert.appearance_id])
        if not found:
            bundle.missing.append(f"appearance {alert.appearance_id} (deleted since the alert)")
        for appearance in found:
            bundle.add(appearance, alert.score)
            if appearance.track_id is None:
                continue
            span = SearchFilters(since=alert.ts, until=alert.last_ts)
            members = self._catalog.track_members([appearance.track_id], filters=span)
            for member in members.get(appearance.track_id, []):
                if member.id != appearance.id:
                    bundle.add(member, None)
        # Webhook URLs may carry tokens: an archive handed over names the rule, not its hooks.
        shown = {k: v for k, v in rule.to_dict().items() if k != "webhooks"}
        query: dict[str, Any] = {"rule": shown, "examples": []}
        for example in rule.examples:
            name = f"query/rule{rule.id}-example{example.id}.{extension(example.crop_path)}"
            crop = bundle.blob(example.crop_path, name)
            query["examples"].append({"id": example.id, "sha256": example.sha256, "crop": crop})
        query["crop"] = query["examples"][0]["crop"] if query["examples"] else None
        return alert.to_dict(), query

    def _audit(self, actor: Actor, record: dict[str, Any], *, status: str, detail: str) -> int:
        return self._access.record(
            NewAuditEntry(
                action="export",
                key_id=actor.key_id,
                key_name=actor.name,
                role=actor.role,
                status=status,
                query_kind=str(record.get("kind"))[:20],
                filters=record,
                result_count=record.get("items"),
                client=actor.client,
                detail=detail[:1000],
            )
        )
