"""`astreinte report` (KPIs) and `astreinte statement` (monthly on-call statements)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from astreinte_ari.cli.context import EXIT_OK, EXIT_USAGE, CliContext, usage_error
from astreinte_ari.cli.database import add_date_range, database_options, run_on_database
from astreinte_ari.reports.humanize import LANGUAGES, Lang, language


def register(subparsers: Any) -> None:
    common = database_options()
    p = subparsers.add_parser("report", parents=[common], help="KPIs over a period (managers)")
    add_date_range(p, "calls", required=True, form="YYYY-MM-DD or ISO 8601, in --tz if no zone")
    p.add_argument("--line", metavar="DID", help="only this line")
    # A document, not rows: its own formats (cli/output.py is for row lists).
    p.add_argument(
        "--format",
        choices=("html", "csv", "json"),
        default="json",
        help="json (default), csv (section,key,subkey,value) or html (with charts)",
    )
    p.add_argument("--tz", help="time zone for days and hours (default: the configuration's)")
    _add_lang(p, "html")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.set_defaults(func=_cmd_report)

    p = subparsers.add_parser("statement", parents=[common], help="monthly on-call statement")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--person", help="only this person id (default: everyone on call)")
    p.add_argument(
        "--format",
        choices=("csv", "html"),
        default="csv",
        help="csv (default; formula-guarded like every CSV) or html (a page per person)",
    )
    _add_lang(p, "html and of the csv `label` column")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.set_defaults(func=_cmd_statement)


def _add_lang(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        help=f"language of the {what}: fr or en (default: the configuration's language, else fr)",
    )


def _language(args: argparse.Namespace, config: Any) -> Lang:
    """--lang, else the configuration's `language` (a broken file: what is readable)."""
    return language(args.lang or getattr(config, "language", None))


def _names(config: Any) -> dict[str, str]:
    """Person id -> name from the configuration (empty when it cannot be read whole)."""
    teams = getattr(config, "teams", None) or {}
    return {pid: person.name for team in teams.values() for pid, person in team.people.items()}


def _when(text: str, option: str, zone: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise usage_error(f"{option}: not a date or ISO 8601 date/time: {text!r}") from None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        Path(output).write_text(text, encoding="utf-8")
        print(f"written: {output}", file=sys.stderr)


def _cmd_report(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        from astreinte_ari.reports import render
        from astreinte_ari.reports.kpis import build_report

        # Names and language are only for the HTML: the machine formats need the
        # configuration only for its time zone.
        wants_config = args.tz is None or args.format == "html"
        config = ctx.lenient_config() if wants_config else None
        tz_name = args.tz or (config.timezone if config is not None and config.timezone else "UTC")
        try:
            zone = ZoneInfo(tz_name)
        except Exception:
            raise usage_error(f"--tz: unknown time zone {tz_name!r}") from None
        since, until = _when(args.since, "--since", zone), _when(args.until, "--until", zone)
        if until <= since:
            raise usage_error("--until must be after --since")
        engine = ctx.open_database(url)
        try:
            report = build_report(engine, since, until, timezone=tz_name, line=args.line)
        finally:
            engine.dispose()
        if args.format == "html":
            lines = getattr(config, "lines", None) or {}
            line_name = lines[args.line].name if args.line in lines else None
            text = render.to_html(report, _language(args, config), _names(config), line_name)
        else:
            text = render.to_json(report) if args.format == "json" else render.to_csv(report)
        _emit(text, args.output)
        return EXIT_OK

    return run_on_database(ctx, body)


def _cmd_statement(args: argparse.Namespace, ctx: CliContext) -> int:
    # Usage errors first: they need neither the database nor the configuration.
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        print(f"astreinte: --month: expected YYYY-MM with a month from 01 to 12, "
              f"got {args.month!r}", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    if not ctx.path:
        print("astreinte: statement needs the configuration (rotas, people, compensation "
              "rates): use -c CONFIG (or set ASTREINTE_CONFIG)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE

    def body(url: str) -> int:
        from astreinte_ari.reports import statement as st
        from astreinte_ari.schedule.rota import shifts

        config = ctx.whole_config("statement (rotas, people and rates)")
        assert config is not None  # ctx.path is set: checked above
        everyone = {p for team in config.teams.values() for p in team.people}
        if args.person and args.person not in everyone:
            # A typo would otherwise print an all-zero statement that looks real.
            known = ", ".join(sorted(everyone))
            raise usage_error(f"--person: no person {args.person!r} in the configuration "
                              f"(people: {known})")  # fmt: skip
        zone = ZoneInfo(config.timezone)
        start, end = st.month_bounds(args.month, zone)
        periods: dict[str, list[st.Period]] = {}
        for team_name, team in config.teams.items():
            for rota_name in team.rotas:
                for shift in shifts(team, rota_name, start, end):
                    period = st.Period(max(shift.start, start), min(shift.end, end), team_name,
                                       rota_name, shift.source)  # fmt: skip
                    periods.setdefault(shift.person_id, []).append(period)
        engine = ctx.open_database(url)
        statements = []
        try:
            # Everyone on call, and whoever intervened without being on a rota.
            listed = set(periods) | st.people_with_interventions(engine, start, end)
            people = [args.person] if args.person else sorted(listed)
            for person in people:
                statement = st.Statement(person, args.month, config.compensation.currency)
                statement.periods = sorted(periods.get(person, []), key=lambda p: p.start)
                # Interventions count even outside a rota period (e.g. a supervisor hop).
                statement.interventions = st.interventions(engine, person, start, end)
                st.compensate(statement, zone, config.compensation)
                statements.append(statement)
        finally:
            engine.dispose()
        lang, names = _language(args, config), _names(config)
        from astreinte_ari.reports.statement_html import to_html

        render = st.to_csv if args.format == "csv" else to_html
        _emit(render(statements, zone, lang, names), args.output)
        return EXIT_OK

    return run_on_database(ctx, body, whole="statement (rotas, people and rates)")
