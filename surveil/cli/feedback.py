"""`surveil feedback ...` (verdicts on hits, re-runs with them, a space's min_score) and
`surveil rules calibrate` (a rule's threshold from its labelled alerts)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from surveil.cli.alerts import RuleRef, rules_app
from surveil.cli.common import JsonOpt, app, cli_actor, handle_errors, print_json, with_services
from surveil.container import Services
from surveil.domain import FeedbackTarget, InputError, Space, Verdict

feedback_app = typer.Typer(
    help="Confirm or reject search and alert hits; re-run searches with them; calibrate.",
    no_args_is_help=True,
)
app.add_typer(feedback_app, name="feedback")

SearchOpt = Annotated[
    str | None,
    typer.Option(
        "--search", help="The search: its audit id, or 'last' (your latest search from the CLI)."
    ),
]
RuleOpt = Annotated[int | None, typer.Option("--rule", help="Or an alert rule's id.")]
AlertOpt = Annotated[int | None, typer.Option("--alert", help="Or an alert (its rule and hit).")]
TrackOpt = Annotated[int | None, typer.Option("--track", help="The sighting (track) marked.")]
AppearanceOpt = Annotated[
    int | None, typer.Option("--appearance", help="Or one appearance marked.")
]
PrecisionOpt = Annotated[
    float | None,
    typer.Option(
        "--precision", min=0.0, max=1.0, help="Precision to reach (default feedback.precision)."
    ),
]


def _actor() -> Any:
    from surveil.search.audited import Actor

    return Actor(key_id=None, name=cli_actor(), role="cli")


def search_id(s: Services, given: str) -> int:
    """A search's audit id as typed: a number, or 'last' for this CLI user's latest search."""
    if given.isdigit():
        return int(given)
    if given != "last":
        raise InputError(f"--search {given!r} must be an audit id or 'last'")
    me = cli_actor()
    for entry in s.access.audit_entries(action="search", limit=500):
        if entry.entry.key_name == me and entry.entry.status == "ok":
            return entry.id
    raise InputError(f"no search by {me} in the audit trail yet; run `surveil search` first")


def _target(
    s: Services,
    search: str | None,
    rule: int | None,
    alert: int | None,
    track: int | None,
    appearance: int | None,
) -> FeedbackTarget:
    audit_id = None if search is None else search_id(s, search)
    return FeedbackTarget(
        audit_id=audit_id, rule_id=rule, alert_id=alert, track_id=track, appearance_id=appearance
    )


def _line(f: dict[str, Any]) -> str:
    query = f"search {f['audit_id']}" if f["audit_id"] else f"rule {f['rule_id']}"
    hit = f"track {f['track_id']}" if f["track_id"] else f"appearance {f['appearance_id']}"
    score = "-" if f["score"] is None else f"{f['score']:.3f}"
    return f"{f['ts']}  {query:<12} {hit:<18} {f['verdict']:<9} score {score}  by {f['by']}"


@feedback_app.command(
    "mark",
    epilog="Examples:  surveil feedback mark confirmed --search last --track 17\n\n"
    "           surveil feedback mark rejected --alert 4",
)
def feedback_mark(
    verdict: Annotated[Verdict, typer.Argument(help="confirmed or rejected.")],
    search: SearchOpt = None,
    rule: RuleOpt = None,
    alert: AlertOpt = None,
    track: TrackOpt = None,
    appearance: AppearanceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark a hit of a search (or of an alert rule) as the query's object or not; audited.

    A second verdict on the same hit replaces the first (the audit trail keeps both).
    """
    from surveil.search.render import feedback_view

    def act(s: Services) -> dict[str, Any]:
        target = _target(s, search, rule, alert, track, appearance)
        return feedback_view(s.feedback().mark(_actor(), target, verdict))

    with handle_errors():
        done = with_services(act, reconcile=False)
    print_json(done) if as_json else typer.echo(_line(done))


@feedback_app.command("list")
def feedback_list(search: SearchOpt = None, rule: RuleOpt = None, as_json: JsonOpt = False) -> None:
    """List the verdicts given on a search's hits or on a rule's."""
    from surveil.search.render import feedback_view

    def act(s: Services) -> list[dict[str, Any]]:
        audit_id = None if search is None else search_id(s, search)
        found = s.feedback().listing(audit_id=audit_id, rule_id=rule)
        return [feedback_view(f) for f in found]

    with handle_errors():
        rows = with_services(act, reconcile=False)
    if as_json:
        print_json({"feedback": rows})
        return
    if not rows:
        typer.echo("no verdicts yet: surveil feedback mark confirmed --search ID --track T")
    for row in rows:
        typer.echo(_line(row))


@feedback_app.command("clear")
def feedback_clear(
    search: SearchOpt = None,
    rule: RuleOpt = None,
    alert: AlertOpt = None,
    track: TrackOpt = None,
    appearance: AppearanceOpt = None,
) -> None:
    """Forget the verdict on one hit (audited)."""

    def act(s: Services) -> bool:
        target = _target(s, search, rule, alert, track, appearance)
        return s.feedback().clear(_actor(), target)

    with handle_errors():
        gone = with_services(act, reconcile=False)
    typer.echo("verdict cleared" if gone else "there was no verdict on that hit")


@feedback_app.command("rerun", epilog="Example:  surveil feedback rerun last --json")
def feedback_rerun(
    search: Annotated[str, typer.Argument(help="The search: its audit id, or 'last'.")],
    limit: Annotated[int | None, typer.Option(min=1, help="Most sightings shown.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search again, more like the confirmed hits, without the rejected ones.

    Confirmed hits join the query; rejected ones never come back and their
    near-duplicates drop. Audited as a search linked to the original.
    """
    from surveil.search.render import result_table, result_to_dict

    def act(s: Services) -> Any:
        return s.feedback().rerun(_actor(), search_id(s, search), limit=limit)

    with handle_errors():
        done = with_services(act)
    if as_json:
        print_json({**result_to_dict(done.result), "audit_id": done.audit_id})
    else:
        typer.echo(result_table(done.result))
        typer.echo(f"(re-run audited as {done.audit_id})")


def _print_calibration(found: dict[str, Any], what: str) -> None:
    if not found["enough_labels"]:
        need = found["needed"]
        typer.echo(
            f"too few labels to calibrate {what}: mark {need['confirmed']} more confirmed and "
            f"{need['rejected']} more rejected hits (surveil feedback mark ...)"
        )
        return
    if found["threshold"] is None:
        typer.echo(f"no threshold reaches precision {found['precision_target']} on these labels")
        return
    typer.echo(
        f"{what}: now {found['current']:.4f}; proposed {found['threshold']:.4f} "
        f"(precision {found['precision']:.3f}, recall {found['recall']:.3f} "
        f"at target precision {found['precision_target']})"
    )
    for key, title in (("caught", "would catch"), ("missed", "would miss")):
        hits = found[key]
        typer.echo(
            f"  {title} {len(hits)}: " + ", ".join(f"{h['hit']} {h['score']:.3f}" for h in hits)
        )
    fa = found["false_alarms"]
    typer.echo(
        f"  false alarms {len(fa)}: " + ", ".join(f"{h['hit']} {h['score']:.3f}" for h in fa)
    )
    typer.echo("  applied" if found["applied"] else "  not applied: run again with --apply")


@feedback_app.command(
    "calibrate", epilog="Example:  surveil feedback calibrate --space person --precision 0.95"
)
def feedback_calibrate(
    space: Annotated[Space, typer.Option("--space", help="The embedding space.")],
    precision: PrecisionOpt = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the proposal the space's default min_score.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Propose a space's default min_score from every verdict in it; --apply stores it."""

    def act(s: Services) -> dict[str, Any]:
        return s.calibrator().space(_actor(), space, precision=precision, apply=apply).to_dict()

    with handle_errors():
        found = with_services(act, reconcile=False)
    print_json(found) if as_json else _print_calibration(found, f"{space} min_score")


@rules_app.command(
    "calibrate", epilog="Example:  surveil rules calibrate suspect-1 --precision 0.9 --apply"
)
def rules_calibrate(
    rule: RuleRef,
    precision: PrecisionOpt = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Change the rule's threshold to the proposal.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Propose the lowest threshold reaching a precision on the rule's labelled hits.

    Every hit marked for the rule (its alerts, or any track marked with --rule) is scored
    against the rule's examples, so hits below today's threshold count too.
    """

    def act(s: Services) -> dict[str, Any]:
        found = s.alerts.find_rule(rule)
        return s.calibrator().rule(_actor(), found.id, precision=precision, apply=apply).to_dict()

    with handle_errors():
        found = with_services(act, reconcile=False)
    print_json(found) if as_json else _print_calibration(found, f"rule {rule} threshold")
