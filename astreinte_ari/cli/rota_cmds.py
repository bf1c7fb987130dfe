"""`astreinte rota show|ical|fairness`: the programme for ops staff (config only)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from astreinte_ari.cli.context import CHECKING, CliContext, add_config_option
from astreinte_ari.cli.database import add_date_range
from astreinte_ari.cli.output import add_format_options, emit_rows
from astreinte_ari.config.model import AppConfig, TeamConfig
from astreinte_ari.schedule.reports import day_bounds, fairness, ical_feed, month_grid


def register(sub: Any) -> None:
    rota = sub.add_parser(
        "rota", help="the on-call programme (month grid, iCal, fairness) and its changes"
    )
    rota_sub = rota.add_subparsers(dest="rota_command", metavar="ACTION")
    rota.set_defaults(func=lambda args, ctx: (rota.print_help(), 2)[1])

    show = rota_sub.add_parser("show", help="a month of a team's rotas, one line per day")
    add_config_option(show)
    show.add_argument("--team", required=True)
    show.add_argument("--month", metavar="YYYY-MM", help="default: this month")
    add_format_options(show)  # json/csv: one row per shift instead of the grid
    show.set_defaults(func=cmd_show)

    ical = rota_sub.add_parser("ical", help="write an iCalendar (.ics) feed of the shifts")
    add_config_option(ical)
    who = ical.add_mutually_exclusive_group(required=True)
    who.add_argument("--team")
    who.add_argument("--person", help="person id; every team they belong to")
    add_date_range(
        ical, "shifts", metavar="YYYY-MM-DD", form="a day; default: today, and 1 year later"
    )
    ical.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    ical.set_defaults(func=cmd_ical)

    fair = rota_sub.add_parser("fairness", help="per-person weekend and holiday counts")
    add_config_option(fair)
    fair.add_argument("--team", required=True)
    fair.add_argument("--year", type=int, help="default: this year")
    fair.set_defaults(func=cmd_fairness)

    from astreinte_ari.cli import change_cmds

    change_cmds.register(rota_sub)  # self-service swaps and covers


def _team(config: AppConfig, name: str) -> TeamConfig | None:
    team = config.teams.get(name)
    if team is None:
        print(f"error: unknown team {name!r} (teams: {', '.join(config.teams)})", file=sys.stderr)
    return team


def cmd_show(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.cli.change_cmds import with_approved_changes

    config = with_approved_changes(ctx, ctx.config(CHECKING))
    team = _team(config, args.team)
    if team is None:
        return 1
    try:
        month = date.fromisoformat(f"{args.month}-01") if args.month else date.today()
    except ValueError:
        print(f"error: --month {args.month!r} is not like 2026-12", file=sys.stderr)
        return 2
    emit_rows(
        args.format,
        _month_shifts(args.team, team, month),
        ROTA_COLUMNS,
        lambda: print(month_grid(args.team, team, month.year, month.month)),
    )
    return 0


ROTA_COLUMNS = ("team", "rota", "person_id", "start", "end", "source", "layer", "reason")


def _month_shifts(name: str, team: TeamConfig, month: date) -> list[dict[str, object]]:
    """The shifts the grid draws, as rows: each rota's shifts overlapping the month
    (local midnight to midnight), times in the team's zone."""
    from zoneinfo import ZoneInfo

    from astreinte_ari.schedule.rota import shifts

    first = month.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    begin, end = day_bounds(team, first)[0], day_bounds(team, after)[0]
    zone = ZoneInfo(team.timezone) if team.timezone else UTC
    return [
        {"team": name, "rota": rota, "person_id": s.person_id,
         "start": s.start.astimezone(zone), "end": s.end.astimezone(zone),
         "source": f"{s.source}", "layer": s.layer, "reason": s.reason}
        for rota in team.rotas
        for s in shifts(team, rota, begin, end)
    ]  # fmt: skip


def _day(value: str | None, default: date) -> date:
    return date.fromisoformat(value) if value else default


def cmd_ical(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.cli.change_cmds import with_approved_changes

    config = with_approved_changes(ctx, ctx.config(CHECKING))
    try:
        first = _day(args.since, date.today())
        last = _day(args.until, first + timedelta(days=365))
    except ValueError as exc:
        print(f"error: {exc} (dates look like 2026-12-24)", file=sys.stderr)
        return 2
    if args.team:
        teams = [args.team] if _team(config, args.team) is not None else []
    else:
        teams = [n for n, t in config.teams.items() if args.person in t.people]
        if not teams:
            print(f"error: nobody called {args.person!r} in any team", file=sys.stderr)
    if not teams:
        return 1
    # One team per feed keeps one VTIMEZONE; a person in several teams gets the first.
    name = teams[0]
    team = config.teams[name]
    begin, end = day_bounds(team, first)[0], day_bounds(team, last)[0]
    feed = ical_feed(name, team, begin, end, person=args.person, stamp=datetime.now(UTC))
    if args.output:
        Path(args.output).write_bytes(feed)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(feed.decode("utf-8"))
    return 0


def cmd_fairness(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config(CHECKING)
    team = _team(config, args.team)
    if team is None:
        return 1
    year = args.year or date.today().year
    print(f"Team {args.team}, {year}: days on call at noon (one per rota held)")
    print(f"  {'person':<12} {'weekend days':>12} {'holiday days':>12} {'periods':>8}")
    for row in fairness(team, year):
        print(f"  {row.person:<12} {row.weekend_days:>12} {row.holiday_days:>12} {row.periods:>8}")
    return 0
