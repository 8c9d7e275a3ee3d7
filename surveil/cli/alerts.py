"""Alert commands: `surveil rules ...`, `surveil alerts ...` and `surveil scheduler`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from surveil.alerts.model import Rule, RuleSpec
from surveil.alerts.rules import ExampleImage
from surveil.cli.common import (
    JsonOpt,
    app,
    audit_cli,
    cli_actor,
    cli_settings,
    handle_errors,
    print_json,
    stop_signals,
    with_services,
)
from surveil.container import Services
from surveil.domain import InputError, SurveilError, parse_time

rules_app = typer.Typer(help="Watchlist alert rules.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alerts the rules raised.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(alerts_app, name="alerts")

RuleRef = Annotated[str, typer.Argument(help="The rule's id or name.")]


def _read_example(path: Path, max_pixels: int) -> ExampleImage:
    from surveil.vision.images import decode_untrusted

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read example {path}: {exc.strerror}") from None
    return ExampleImage(decode_untrusted(data, max_pixels=max_pixels, what=str(path)), data)


def _read_secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read --secret-file {path}: {exc.strerror}") from None
    if len(secret) < 16:
        raise InputError("the webhook secret must be at least 16 characters")
    return secret


def _print_rule(rule: Rule) -> None:
    s = rule.spec
    state = "enabled" if s.enabled else "disabled"
    cams = ", ".join(s.cameras) or "all cameras"
    labels = ", ".join(s.labels) or "any label"
    typer.echo(
        f"rule {rule.id} {s.name!r} ({state}): {rule.space} space, threshold {s.threshold}, "
        f"{cams}, {labels}, every {s.interval_s}s, cooldown {s.cooldown_s}s, "
        f"{len(rule.examples)} example(s), {len(s.webhooks)} webhook(s)"
    )


@rules_app.command(
    "add",
    epilog="Example:  surveil rules add --name suspect-1 --example crop.jpg --threshold 0.7 "
    "--camera lobby --webhook https://hooks.example/alerts --json",
)
def rules_add(
    name: Annotated[str, typer.Option(help="A unique name for the rule.")],
    example: Annotated[
        list[Path], typer.Option("--example", help="Example crop (repeatable).", dir_okay=False)
    ],
    threshold: Annotated[
        float, typer.Option(help="Cosine similarity that raises an alert (-1..1).")
    ],
    camera: Annotated[
        list[str] | None, typer.Option("--camera", help="Only these cameras (default all).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Only these labels; picks the space.")
    ] = None,
    interval: Annotated[
        int | None, typer.Option(help="Seconds between evaluations (default alerts.interval).")
    ] = None,
    cooldown: Annotated[
        int | None, typer.Option(help="No new alert per camera this many seconds after one.")
    ] = None,
    gap: Annotated[float, typer.Option(help="Hits this close are one sighting (s).")] = 10.0,
    webhook: Annotated[
        list[str] | None, typer.Option("--webhook", help="URL to POST alerts to (repeatable).")
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(help="File holding the HMAC secret that signs webhooks.", dir_okay=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a rule: it alerts on appearances ingested from now on that match an example."""
    with handle_errors():
        settings = cli_settings()
        spec = RuleSpec(
            name=name,
            threshold=threshold,
            cameras=tuple(camera or ()),
            labels=tuple(label or ()),
            interval_s=interval or settings.alerts.interval_seconds,
            cooldown_s=settings.alerts.cooldown_seconds if cooldown is None else cooldown,
            gap_s=gap,
            webhooks=tuple(webhook or ()),
            secret=_read_secret(secret_file),
        )
        images = [_read_example(p, settings.api.max_image_pixels) for p in example]

        def act(s: Services) -> Rule:
            rule = s.rules().create(spec, images, created_by=cli_actor())
            audit_cli(s, "rule.create", f"rule {rule.id} ({rule.spec.name})")
            return rule

        rule = with_services(act, settings=settings, reconcile=False)
    if as_json:
        print_json(rule.to_dict())
    else:
        _print_rule(rule)


@rules_app.command("list")
def rules_list(as_json: JsonOpt = False) -> None:
    """List every rule."""
    with handle_errors():
        rules = with_services(lambda s: s.alerts.list_rules(), reconcile=False)
    if as_json:
        print_json({"rules": [r.to_dict() for r in rules]})
        return
    if not rules:
        typer.echo("no rules yet: surveil rules add --name N --example crop.jpg --threshold 0.7")
    for rule in rules:
        _print_rule(rule)


@rules_app.command("show")
def rules_show(rule: RuleRef, as_json: JsonOpt = False) -> None:
    """Show one rule with its examples and watermark."""
    with handle_errors():
        found = with_services(lambda s: s.alerts.find_rule(rule), reconcile=False)
    if as_json:
        print_json(found.to_dict())
        return
    _print_rule(found)
    typer.echo(f"  watermark: appearance {found.watermark}; webhooks: {list(found.spec.webhooks)}")
    for ex in found.examples:
        typer.echo(f"  example {ex.id}: sha256 {ex.sha256[:16]}...")


def _set_enabled(ref: str, enabled: bool, as_json: bool) -> None:
    from dataclasses import replace

    def act(s: Services) -> Rule:
        rule = s.alerts.find_rule(ref)
        updated = s.alerts.update_rule(rule.id, replace(rule.spec, enabled=enabled))
        action = "rule.enable" if enabled else "rule.disable"
        audit_cli(s, action, f"rule {rule.id} ({rule.spec.name})")
        return updated

    with handle_errors():
        rule = with_services(act, reconcile=False)
    if as_json:
        print_json(rule.to_dict())
    else:
        _print_rule(rule)


@rules_app.command("disable")
def rules_disable(rule: RuleRef, as_json: JsonOpt = False) -> None:
    """Stop evaluating a rule (its alerts stay); `enable` resumes after its watermark."""
    _set_enabled(rule, False, as_json)


@rules_app.command("enable")
def rules_enable(rule: RuleRef, as_json: JsonOpt = False) -> None:
    """Evaluate a disabled rule again, from where it stopped."""
    _set_enabled(rule, True, as_json)


@rules_app.command("delete")
def rules_delete(rule: RuleRef, as_json: JsonOpt = False) -> None:
    """Delete a rule with its examples and alerts."""

    def act(s: Services) -> dict[str, Any]:
        found = s.alerts.find_rule(rule)
        s.rules().delete(found.id)
        audit_cli(s, "rule.delete", f"rule {found.id} ({found.spec.name})")
        return {"id": found.id, "name": found.spec.name, "deleted": True}

    with handle_errors():
        done = with_services(act, reconcile=False)
    if as_json:
        print_json(done)
    else:
        typer.echo(f"rule {done['id']} ({done['name']}) deleted")


@rules_app.command(
    "test", epilog="Example:  surveil rules test suspect-1 --since 2026-11-20T00:00:00Z --json"
)
def rules_test(
    rule: RuleRef,
    since: Annotated[str, typer.Option(help="Evaluate appearances from this time (ISO 8601).")],
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a rule over past data: what it would alert on. Stores nothing, notifies nobody.

    A dry run searches past data, so it is audited (`rule_test`, as `cli:<os user>`).
    """
    from surveil.jobs.alerting import dry_run_rule
    from surveil.search.audited import Actor, audit_rule_test

    with handle_errors():

        def act(s: Services) -> dict[str, Any]:
            actor = Actor(key_id=None, name=cli_actor(), role="cli")
            given = {"rule": rule, "since": since}
            try:
                start = parse_time(since, "--since")
                assert start is not None
                found = s.alerts.find_rule(rule)
                batch = s.settings.alerts.evaluate_batch
                done = dry_run_rule(
                    s.alerts, found.id, since=start, batch=batch, check=s.check_rule_models
                )
            except SurveilError as exc:
                audit_rule_test(s.access, actor, given, status="refused", detail=str(exc))
                raise
            audit_rule_test(s.access, actor, given, status="ok", count=done.hits)
            return done.to_dict()

        report = with_services(act, reconcile=False)
    if as_json:
        print_json(report)
        return
    typer.echo(
        f"scanned {report['scanned']} appearances: {report['hits']} hits, "
        f"{report['new_alerts']} alerts; best scores {report['top_scores'][:5]}"
    )
    for a in report["alerts"]:
        typer.echo(
            f"  {a['ts']}  {a['camera_id']:<12} {a['label']:<8} {a['score']:.3f}  x{a['hits']}"
        )


@alerts_app.command("list")
def alerts_list(
    rule: Annotated[
        int | None, typer.Option("--rule", help="Only this rule's alerts (id).")
    ] = None,
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    since: Annotated[str | None, typer.Option(help="First seen at or after (ISO 8601).")] = None,
    unacknowledged: Annotated[
        bool, typer.Option("--unacknowledged", help="Only alerts nobody acknowledged.")
    ] = False,
    limit: Annotated[int, typer.Option(help="Most alerts, newest first.", min=1)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List alerts, newest first."""
    with handle_errors():
        start = parse_time(since, "--since")
        found = with_services(
            lambda s: s.alerts.list_alerts(
                rule_id=rule,
                camera_id=camera,
                since=start,
                acknowledged=False if unacknowledged else None,
                limit=limit,
            ),
            reconcile=False,
        )
    if as_json:
        print_json({"alerts": [a.to_dict() for a in found]})
        return
    for a in found:
        ack = "ack" if a.acknowledged_at else "NEW"
        typer.echo(
            f"{a.id:>5} {ack:<4} {a.ts:%Y-%m-%d %H:%M:%S}Z  {a.rule_name:<16.16} "
            f"{a.camera_id:<12} {a.label:<8} {a.score:.3f}  x{a.hits}"
        )


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")], as_json: JsonOpt = False
) -> None:
    """Acknowledge an alert (its evidence is then kept for retention.evidence_days)."""

    def act(s: Services) -> dict[str, Any]:
        alert = s.alerts.acknowledge(alert_id, by=cli_actor())
        audit_cli(s, "alert.ack", f"alert {alert.id}")
        return alert.to_dict()

    with handle_errors():
        done = with_services(act, reconcile=False)
    if as_json:
        print_json(done)
    else:
        typer.echo(f"alert {done['id']} acknowledged by {done['acknowledged_by']}")


@app.command(epilog="Example:  surveil scheduler --once   (e.g. from cron)")
def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="Run every job that is due once, then exit.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run alert rules, webhook deliveries and retention on their schedules.

    Several schedulers may run against one catalog: each job runs in one of them at a time.
    """
    from surveil.container import build_services
    from surveil.jobs.scheduler import Scheduler

    with handle_errors():
        services = build_services(cli_settings())
    runner = Scheduler(services)
    port = services.settings.scheduler.metrics_port
    if port is not None and not once:
        from surveil.telemetry import serve_process_metrics

        serve_process_metrics(port, engine=services.engine, root=services.settings.storage.root)
    try:
        if once:
            outcomes = runner.run_once()
            ran = [
                {"job": o.name, "status": o.status, "seconds": round(o.seconds, 3), **o.summary}
                for o in outcomes
            ]
            if as_json:
                print_json({"jobs": ran})
            else:
                for row in ran:
                    typer.echo(f"{row['job']}: {row['status']} in {row['seconds']}s")
            return
        with stop_signals("scheduler.signal") as stop:
            runner.start()
            while not stop.wait(1.0):
                pass
    finally:
        runner.stop()
        services.close()
