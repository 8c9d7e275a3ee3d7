"""Operator feedback on a search's hits: mark, clear, and re-run the search with it.

A query is named by its search's audit id (a re-run's audit id names its original, so
feedback given on a re-run's hits joins the original's). Each action is audited too:
the feedback table holds the current verdict, the trail holds every change of mind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import structlog

from surveil.config import FeedbackSettings
from surveil.domain import (
    AuditEntry,
    Feedback,
    FeedbackTarget,
    InputError,
    NewAuditEntry,
    NotFoundError,
    SearchFilters,
    Space,
    SurveilError,
    Vectors,
    Verdict,
)
from surveil.ports import AccessStore, BlobStore, Catalog, FeedbackStore
from surveil.search.audited import Actor, AuditedResult
from surveil.search.by_example import SearchResult
from surveil.search.feedback_rank import fuse_max, mean_query, rerank
from surveil.search.service import SearchService
from surveil.vision.crops import decode_image

log = structlog.get_logger(__name__)

#: Audit query_kind of a re-run; its filters name the original ("rerun_of").
RERUN_KIND = "feedback_rerun"
#: The hit of an alert: (rule id, appearance id) of alert `id`.
AlertHit = Callable[[int], tuple[int, int]]
#: A rule's examples: (space, one vector per example).
RuleExamples = Callable[[int], tuple[Space, Vectors]]


@dataclass(frozen=True, slots=True)
class Query:
    """A query as feedback sees it: its space, its example vectors and its filters."""

    audit_id: int | None
    rule_id: int | None
    space: Space
    vectors: Vectors  # one row per example (a search has one, a rule one per example)
    filters: SearchFilters
    limit: int | None = None


def limit_of(value: object) -> int | None:
    """A recorded limit, if it is one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def filters_from_record(record: Mapping[str, Any]) -> SearchFilters:
    """The filters an audited search ran with, rebuilt from its trail record."""
    since, until = record.get("since"), record.get("until")
    return SearchFilters(
        cameras=frozenset(record.get("cameras", [])),
        labels=frozenset(record.get("labels", [])),
        since=datetime.fromisoformat(since) if since else None,
        until=datetime.fromisoformat(until) if until else None,
        min_score=record.get("min_score"),
    )


class FeedbackService:
    """Marks hits for a query, lists and clears them, and re-runs searches with them."""

    def __init__(
        self,
        *,
        store: FeedbackStore,
        search: SearchService,
        access: AccessStore,
        catalog: Catalog,
        blobs: BlobStore,
        rule_examples: RuleExamples,
        alert_hit: AlertHit,
        settings: FeedbackSettings,
        default_limit: int = 50,
    ) -> None:
        self._default_limit = default_limit  # search.limit: a re-run of a search given none
        self._store = store
        self._search = search
        self._access = access
        self._catalog = catalog
        self._blobs = blobs
        self._rule_examples = rule_examples
        self._alert_hit = alert_hit
        self._settings = settings

    # ---- the query -------------------------------------------------------------------

    def origin(self, audit_id: int) -> AuditEntry:
        """The audited search a query id names (a re-run's id names its original)."""
        entry = self._access.audit_entry(audit_id)
        if entry.entry.query_kind == RERUN_KIND and "rerun_of" in entry.entry.filters:
            entry = self._access.audit_entry(int(str(entry.entry.filters["rerun_of"])))
        e = entry.entry
        if e.action != "search" or e.status != "ok" or e.query_kind is None:
            raise InputError(f"audit entry {audit_id} is not a search that ran; give a search's id")
        return entry

    def query(self, target: FeedbackTarget) -> Query:
        """The query a feedback target names, with its example vectors."""
        if target.rule_id is not None:
            space, vectors = self._rule_examples(target.rule_id)
            return Query(None, target.rule_id, space, vectors, SearchFilters())
        assert target.audit_id is not None
        return self.search_query(self.origin(target.audit_id))

    def search_query(self, entry: AuditEntry) -> Query:
        """An audited search's query: its vector again, its filters and limit."""
        space, vector = self._search_vector(entry)
        record = entry.entry.filters
        limit = record.get("limit")
        filters = filters_from_record(record)
        return Query(entry.id, None, space, vector[None, :], filters, limit_of(limit))

    def _search_vector(self, entry: AuditEntry) -> tuple[Space, Vectors]:
        """The vector an audited search searched by (a stored crop is embedded again)."""
        e = entry.entry
        if e.query_kind == "appearance" and e.appearance_id is not None:
            return self._catalog.appearance_embedding(e.appearance_id)
        if e.query_kind == "track" and e.track_id is not None:
            return self._catalog.track_embedding(e.track_id)
        if e.crop_path is None:
            raise NotFoundError(f"search {entry.id} kept no copy of its crop to search again")
        try:
            data = self._blobs.get(e.crop_path)
        except FileNotFoundError:
            raise NotFoundError(f"search {entry.id}'s stored crop is gone") from None
        image = decode_image(data, what=f"search {entry.id}'s crop")
        label = e.filters.get("label")
        found = self._search.embed(image, label=label if isinstance(label, str) else None)
        return found.space, found.vector

    def hit_vectors(self, space: Space, target: FeedbackTarget, *, pooled: bool = True) -> Vectors:
        """The hit's vectors in `space`: a track's members (and pooled), or one appearance.

        A search scores a track by its pooled vector or its best member; a rule scores
        each appearance, so rules leave the pooled vector out.
        """
        if target.appearance_id is not None:
            hit_space, vector = self._catalog.appearance_embedding(target.appearance_id)
            found: Vectors = vector[None, :]
        else:
            assert target.track_id is not None
            hit_space, mean = self._catalog.track_embedding(target.track_id)
            members = self._catalog.member_vectors(space, [target.track_id]).vectors
            rows = [mean[None, :]] if pooled or len(members) == 0 else []
            rows += [members] if members.shape[1:] == mean.shape else []
            found = np.concatenate(rows).astype(np.float32)
        if hit_space != space:
            raise InputError(f"that hit is a {hit_space} and the query searches {space}s")
        return found

    def score(self, query: Query, target: FeedbackTarget) -> float:
        """The hit's score for the query, as the search or rule scores it (best pair)."""
        vectors = self.hit_vectors(query.space, target, pooled=query.rule_id is None)
        if vectors.shape[1:] != query.vectors.shape[1:]:
            raise InputError("that hit was embedded by another model than the query")
        return float(np.max(vectors @ query.vectors.T))

    # ---- marking ---------------------------------------------------------------------

    def mark(self, actor: Actor, target: FeedbackTarget, verdict: Verdict) -> Feedback:
        """Record a verdict (replacing an earlier one), scored for the query, and audit it."""
        target = self._resolve(target)
        query = self.query(target)
        score = self.score(query, target)
        done = self._store.mark(
            target,
            verdict=verdict,
            space=query.space,
            score=score,
            key_id=actor.key_id,
            key_name=actor.name,
        )
        self._audit(actor, "feedback", target, {"verdict": verdict, "score": round(score, 4)})
        log.info("feedback.marked", query=target.query_key, hit=target.hit_key, verdict=verdict)
        return done

    def clear(self, actor: Actor, target: FeedbackTarget) -> bool:
        """Forget a verdict; audited whether or not there was one."""
        target = self._resolve(target)
        gone = self._store.clear(target)
        self._audit(actor, "feedback_clear", target, {"cleared": gone})
        return gone

    def listing(self, *, audit_id: int | None = None, rule_id: int | None = None) -> list[Feedback]:
        """The verdicts given for a search (or a re-run of it) or a rule, oldest first."""
        if rule_id is not None:
            return self._store.for_rule(rule_id)
        if audit_id is None:
            raise InputError("give a search's audit id or a rule")
        return self._store.for_search(self.origin(audit_id).id)

    def _resolve(self, target: FeedbackTarget) -> FeedbackTarget:
        """Alerts become their rule and appearance; re-runs become their original search."""
        if target.alert_id is not None:
            rule_id, appearance_id = self._alert_hit(target.alert_id)
            if target.track_id is not None or target.appearance_id is not None:
                hit = {"track_id": target.track_id, "appearance_id": target.appearance_id}
            else:  # the alert's own hit: its track (a sighting) when it has one
                track = next(iter(self._tracks_of([appearance_id])), None)
                hit = {"track_id": track, "appearance_id": None if track else appearance_id}
            return FeedbackTarget(rule_id=rule_id, alert_id=target.alert_id, **hit)
        if target.audit_id is not None:
            origin = self.origin(target.audit_id).id
            return FeedbackTarget(
                audit_id=origin, track_id=target.track_id, appearance_id=target.appearance_id
            )
        return target

    def _audit(
        self, actor: Actor, action: str, target: FeedbackTarget, extra: dict[str, Any]
    ) -> int:
        return self._access.record(
            NewAuditEntry(
                action=action,
                key_id=actor.key_id,
                key_name=actor.name,
                role=actor.role,
                status="ok",
                query_kind="rule" if target.rule_id is not None else "search",
                appearance_id=target.appearance_id,
                track_id=target.track_id,
                filters={
                    k: v
                    for k, v in {
                        "audit_id": target.audit_id,
                        "rule_id": target.rule_id,
                        "alert_id": target.alert_id,
                        **extra,
                    }.items()
                    if v is not None
                },
                client=actor.client,
            )
        )

    # ---- re-running ------------------------------------------------------------------

    def rerun(self, actor: Actor, audit_id: int, *, limit: int | None = None) -> AuditedResult:
        """The search again, with its confirmed hits joining the query and rejected ones out.

        Audited like a search (query_kind "feedback_rerun", filters naming the original);
        once the original is found, a refused re-run is audited with its error too.
        """
        started = time.perf_counter()
        origin = self.origin(audit_id)
        record: dict[str, Any] = {"rerun_of": origin.id}
        try:
            result, counts = self._rerun(origin, limit)
        except SurveilError as exc:
            self._audit_rerun(actor, origin, {**record, "error": str(exc)[:200]}, None, "refused")
            raise
        record.update(counts)
        count = sum(len(s.hits) for s in result.sightings)
        new_id = self._audit_rerun(actor, origin, record, count, "ok")
        log.info(
            "feedback.rerun",
            audit_id=new_id,
            rerun_of=origin.id,
            sightings=len(result.sightings),
            ms=round((time.perf_counter() - started) * 1000, 1),
            **counts,
        )
        return AuditedResult(result, new_id)

    def _rerun(self, origin: AuditEntry, limit: int | None) -> tuple[SearchResult, dict[str, int]]:
        started = time.perf_counter()
        query = self.search_query(origin)
        given = self._store.for_search(origin.id)
        confirmed = [f for f in given if f.verdict == "confirmed"][-self._settings.max_examples :]
        rejected = [f for f in given if f.verdict == "rejected"]
        pos = self._pooled(query.space, confirmed)
        neg = self._pooled(query.space, rejected)
        examples = np.concatenate([query.vectors, pos]) if len(pos) else query.vectors
        limit = limit or query.limit or self._default_limit
        floor = query.filters.min_score
        floor = self._search.default_floor(query.space) if floor is None else floor
        # Search deeper than the limit: rejected tracks leave, others may fall below it.
        deep = limit + len(rejected)
        if self._settings.fusion == "mean":
            vectors: Sequence[Vectors] = [mean_query(examples)]
        else:
            vectors = list(examples)
        results = [
            self._search.by_vector(query.space, v, filters=query.filters, limit=deep)
            for v in vectors
        ]
        found = fuse_max(results)
        gone = {f.target.track_id for f in rejected if f.target.track_id is not None}
        gone |= self._tracks_of([f.target.appearance_id for f in rejected])
        tracks = {t: self._catalog.track_embedding(t)[1] for t in found} if len(neg) else {}
        sightings, cut = rerank(
            found,
            track_vectors=tracks,
            rejected=neg,
            rejected_tracks=gone,
            floor=floor,
            weight=self._settings.reject_weight,
            limit=limit,
        )
        result = SearchResult(
            sightings=sightings,
            candidates=sum(r.candidates for r in results),
            rounds=sum(r.rounds for r in results),
            seconds=time.perf_counter() - started,
            truncated=cut or any(r.truncated for r in results),
            truncated_reason="limit" if cut else next((r.truncated_reason for r in results), None),
            warnings=results[0].warnings if results else (),
        )
        return result, {"confirmed": len(confirmed), "rejected": len(rejected)}

    def _pooled(self, space: Space, given: Sequence[Feedback]) -> Vectors:
        """One vector per marked hit: a track's pooled vector, or an appearance's own."""
        rows = []
        for f in given:
            t = f.target
            if t.track_id is not None:
                rows.append(self._catalog.track_embedding(t.track_id)[1])
            elif t.appearance_id is not None:
                rows.append(self._catalog.appearance_embedding(t.appearance_id)[1])
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)

    def _tracks_of(self, appearance_ids: Sequence[int | None]) -> set[int]:
        wanted = [a for a in appearance_ids if a is not None]
        found = self._catalog.appearances(wanted) if wanted else []
        return {a.track_id for a in found if a.track_id is not None}

    def _audit_rerun(
        self,
        actor: Actor,
        origin: AuditEntry,
        record: dict[str, Any],
        count: int | None,
        status: str,
    ) -> int:
        e = origin.entry
        return self._access.record(
            NewAuditEntry(
                action="search",
                key_id=actor.key_id,
                key_name=actor.name,
                role=actor.role,
                status=status,
                query_kind=RERUN_KIND,
                crop_sha256=e.crop_sha256,
                crop_path=e.crop_path,
                appearance_id=e.appearance_id,
                keyframe_id=e.keyframe_id,
                track_id=e.track_id,
                box=e.box,
                filters={**e.filters, **record},
                result_count=count,
                client=actor.client,
            )
        )
