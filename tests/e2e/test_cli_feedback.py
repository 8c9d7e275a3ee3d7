"""Feedback and calibration as an operator types them: `surveil feedback ...` and
`surveil rules calibrate`, as processes, on a catalog whose hits have known scores."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_process import cli_env, cli_json, run_cli
from synthetic import TARGET, make_rule, near, store_persons

from surveil.config import load_settings
from surveil.container import build_services
from surveil.domain import FeedbackTarget
from surveil.search.audited import Actor

CONFIRMED = [0.95, 0.9, 0.85, 0.8, 0.75]
REJECTED = [0.7, 0.65, 0.6, 0.5, 0.45]


def test_mark_then_calibrate_a_rule_applied_only_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'catalog.db').as_posix()}"
    env = cli_env(tmp_path / "data", url)
    services = build_services(
        load_settings(overrides={"storage.root": str(tmp_path / "data"), "database.url": url})
    )
    try:
        rule_id = make_rule(services, name="suspect")
        scores = CONFIRMED + REJECTED
        ids = store_persons(
            services, "gate", [(i, near(TARGET, s, i)) for i, s in enumerate(scores)]
        )
        tracks = [a.track_id for a in services.catalog.appearances(ids)]
    finally:
        services.close()

    # Every hit but the first labelled through the service; the first as an operator types it.
    actor = Actor(key_id=None, name="cli:test", role="cli")
    services = build_services(
        load_settings(overrides={"storage.root": str(tmp_path / "data"), "database.url": url})
    )
    try:
        for track, score in list(zip(tracks, scores, strict=True))[1:]:
            verdict = "confirmed" if score in CONFIRMED else "rejected"
            target = FeedbackTarget(rule_id=rule_id, track_id=track)
            services.feedback().mark(actor, target, verdict)  # type: ignore[arg-type]
    finally:
        services.close()
    args = ("feedback", "mark", "confirmed", "--rule", str(rule_id), "--track", str(tracks[0]))
    marked = cli_json(env, *args)
    assert abs(marked["score"] - scores[0]) < 1e-3 and marked["by"].startswith("cli:")

    proposed = run_cli(env, "rules", "calibrate", "suspect", "--precision", "1.0").stdout
    assert re.search(r"now 0\.8000; proposed 0\.7(499|500) ", proposed), proposed
    assert "would catch 5" in proposed and "would miss 0" in proposed
    assert "not applied" in proposed
    applied = cli_json(env, "rules", "calibrate", "suspect", "--precision", "1", "--apply")
    assert applied["applied"] is True and applied["threshold"] == pytest.approx(0.75, abs=2e-4)
    services = build_services(
        load_settings(overrides={"storage.root": str(tmp_path / "data"), "database.url": url})
    )
    try:
        assert services.alerts.get_rule(rule_id).spec.threshold == applied["threshold"]
        assert [
            e.entry.key_name for e in services.access.audit_entries(action="rule_calibrate")
        ] == [marked["by"]]
    finally:
        services.close()
