"""`astreinte check` and `astreinte who`: configuration commands for ops staff.

Both only read the configuration (no Asterisk, no database), so they are safe
to run on any machine before deploying an edit.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from astreinte_ari.cli.context import CHECKING, CliContext, add_config_option
from astreinte_ari.cli.output import add_format_options, emit_rows
from astreinte_ari.config.loader import ConfigError
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.secrets import SecretError
from astreinte_ari.routing.plan import CallPlan
from astreinte_ari.routing.router import build_plan
from astreinte_ari.schedule.rota import shifts
from astreinte_ari.schedule.validate import load_checked_config


def register(sub: Any) -> None:
    check = sub.add_parser(
        "check", help="validate a configuration file and show who is on call now"
    )
    add_config_option(check)
    check.add_argument(
        "--previous",
        metavar="FILE",
        help="previously accepted configuration: flag shift changes inside the notice window",
    )
    check.add_argument(
        "--from",
        dest="check_from",
        metavar='"YYYY-MM-DD HH:MM"',
        help="start of the rota checks' horizon, local time (default: now)",
    )
    check.set_defaults(func=cmd_check)

    who = sub.add_parser("who", help="show the call cascade of each line at a given time")
    add_config_option(who)
    only = who.add_mutually_exclusive_group()
    only.add_argument("--line", metavar="DID", help='only this line, e.g. "+33180000000"')
    only.add_argument("--team", metavar="TEAM", help="only the lines of this team")
    who.add_argument(
        "--at",
        metavar='"YYYY-MM-DD HH:MM"',
        help="local time in the configuration's time zone (default: now)",
    )
    add_format_options(who)
    who.set_defaults(func=cmd_who)


def _local(at: datetime, config: AppConfig) -> str:
    return at.astimezone(ZoneInfo(config.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _warnings(config: AppConfig) -> list[str]:
    warnings: list[str] = []
    try:
        config.ari_password()
    except SecretError as exc:
        warnings.append(f"{exc} (needed by `astreinte run`, not by this check)")
    return warnings


def _first_responder(plan: CallPlan) -> str:
    if plan.menu is not None:  # the key decides; no key: the default choice
        default = plan.menu.default
        keys = ", ".join(f"{c.key} {c.label}" for c in plan.menu.choices)
        return f"menu ({keys}); default {default.key}: {_first_responder(default.plan)}"
    if not plan.hops:
        return f"nobody to ring, straight to {plan.final}"
    hop = plan.hops[0]
    if not hop.require_accept:
        return f"business hours, forwarded to {hop.number}"
    return f"{hop.label}: {hop.person_name} ({hop.person_id}) {hop.number}"


def cmd_check(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.cli.change_cmds import print_approved_changes, with_approved_changes

    yaml_config = ctx.config(CHECKING)
    config = with_approved_changes(ctx, yaml_config)  # the service's view: YAML + changes
    people = sum(len(team.people) for team in config.teams.values())
    print(
        f"OK {config.source_path}: {len(config.lines)} line(s), {len(config.teams)} team(s), "
        f"{people} people, time zone {config.timezone}"
    )
    now = datetime.now(UTC)
    print(f"Now ({_local(now, config)}):")
    for did, line in config.lines.items():
        plan = build_plan(config, did, now)
        if plan is not None:
            print(f"  {did}  {line.name}  [{plan.period}]  {_first_responder(plan)}")
    print_approved_changes(yaml_config, config, now)
    for warning in _warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        node = config.node_name()
    except ValueError as exc:  # the env override is checked like the file
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Node: {node}")
    refused = config.exposed_secrets()
    for error in refused:
        print(f"error: {error}", file=sys.stderr)
    if refused:
        print("configuration refused: secret files must not be world-readable.", file=sys.stderr)
        return 1
    check_from = getattr(args, "check_from", None)
    try:
        start = _parse_at(check_from, config) if check_from else now
    except ValueError:
        print(f"error: --from {check_from!r} is not a time like 2026-12-01 00:00", file=sys.stderr)
        return 2
    return _print_programme_findings(config, start, getattr(args, "previous", None))


def _print_programme_findings(config: AppConfig, now: datetime, previous_path: str | None) -> int:
    """Labour-law and coverage findings (docs/rotas.md); 1 if any is an error."""
    from astreinte_ari.routing.coverage import programme_report

    previous = None
    if previous_path:
        try:
            previous = load_checked_config(previous_path)
        except ConfigError as exc:
            print(f"error: --previous {previous_path} is not usable:\n{exc}", file=sys.stderr)
            return 2
    findings = programme_report(config, now, previous=previous)
    if findings:
        print(f"Rota checks ({len(findings)} finding(s)):")
    for finding in findings:
        print(f"  {finding.describe(config.timezone)}")
    return 1 if any(f.level == "error" for f in findings) else 0


def _parse_at(value: str | None, config: AppConfig) -> datetime:
    if value is None:
        return datetime.now(UTC)
    at = datetime.fromisoformat(value.strip())
    return at.replace(tzinfo=ZoneInfo(config.timezone)) if at.tzinfo is None else at


def _print_plan(plan: CallPlan) -> None:
    print(f"{plan.did}  {plan.line_name}  (team {plan.team}, {plan.language})")
    print(f"  period: {plan.period}   announcement: {plan.announcement or '-'}")
    for i, hop in enumerate(plan.hops, 1):
        accept = "" if hop.require_accept else "  (no press-1)"
        print(
            f"  {i}. {hop.label:<18} {hop.person_name} ({hop.person_id})  "
            f"{hop.number}  {hop.ring_timeout_s} s{accept}"
        )
    print(f"  then: {plan.final}")


def _print_rotas(config: AppConfig, team_name: str, at: datetime) -> None:
    team = config.teams[team_name]
    for rota_name in team.rotas:
        current = shifts(team, rota_name, at, at + timedelta(days=366))
        if not current:
            continue
        shift = current[0]
        if shift.start > at:
            print(f"  rota {rota_name}: nobody until {_local(shift.start, config)}")
            continue
        extra = ""
        if shift.source != "rotation":
            asked = f" (asked by {shift.requested_by})" if shift.requested_by else ""
            extra = f", {shift.source}: {shift.reason or 'no reason given'}{asked}"
        layer = f" [{shift.layer}]" if len(team.rotas[rota_name].all_layers()) > 1 else ""
        print(
            f"  rota {rota_name}{layer}: {shift.person_id} until {_local(shift.end, config)}{extra}"
        )


def cmd_who(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.cli.change_cmds import with_approved_changes

    config = with_approved_changes(ctx, ctx.config(CHECKING))
    try:
        at = _parse_at(args.at, config)
    except ValueError:
        print(f'error: --at {args.at!r} is not a time like "2026-12-24 23:00"', file=sys.stderr)
        return 2
    if args.line is not None and args.line not in config.lines:
        print(f"error: unknown line {args.line!r} (lines: {', '.join(config.lines)})")
        return 1
    if args.team is not None and args.team not in config.teams:
        print(f"error: unknown team {args.team!r} (teams: {', '.join(config.teams)})")
        return 1
    dids = [
        did
        for did, line in config.lines.items()
        if (args.line is None or did == args.line) and (args.team is None or line.team == args.team)
    ]
    plans = [p for p in (build_plan(config, did, at) for did in dids) if p is not None]

    def table() -> None:
        print(f"At {_local(at, config)}:")
        for plan in plans:
            print()
            _print_plan(plan)
        teams = [args.team] if args.team else sorted({config.lines[d].team for d in dids})
        for team_name in teams:
            print(f"\nteam {team_name}:")
            _print_rotas(config, team_name, at)

    local = at.astimezone(ZoneInfo(config.timezone)).replace(microsecond=0)
    rows = [row for plan in plans for row in _cascade_rows(plan, local)]
    emit_rows(args.format, rows, WHO_COLUMNS, table)
    return 0


# One row per step of each line's cascade; a line that rings nobody has one row
# with an empty step (its `then` says where the call goes).
WHO_COLUMNS = ("at", "did", "line_name", "team", "period", "step", "label", "person_id",
               "person_name", "number", "ring_timeout_s", "require_accept", "then")  # fmt: skip


def _cascade_rows(plan: CallPlan, at: datetime) -> list[dict[str, object]]:
    line = {"at": at, "did": plan.did, "line_name": plan.line_name, "team": plan.team,
            "period": f"{plan.period}", "then": f"{plan.final}"}  # fmt: skip
    if not plan.hops:
        return [line]
    return [
        {**line, "step": step, "label": hop.label, "person_id": hop.person_id,
         "person_name": hop.person_name, "number": hop.number,
         "ring_timeout_s": hop.ring_timeout_s, "require_accept": hop.require_accept}
        for step, hop in enumerate(plan.hops, 1)
    ]  # fmt: skip
