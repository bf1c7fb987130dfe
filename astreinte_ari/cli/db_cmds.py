"""`astreinte db upgrade|current` and `astreinte calls list|show` (timeline: call_timeline).

The database comes from `--url`, else from the configuration given with `-c`
(or the ASTREINTE_CONFIG environment variable): see cli/context.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.cli.context import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliContext
from astreinte_ari.cli.database import database_options, parse_when, run_on_database
from astreinte_ari.cli.formatting import caller_label, duration, local_time


def register(subparsers: Any) -> None:
    common = database_options()

    db = subparsers.add_parser("db", help="audit database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = db_sub.add_parser("upgrade", parents=[common], help="migrate the schema to this version")
    p.set_defaults(func=_cmd_upgrade)
    p = db_sub.add_parser("current", parents=[common], help="show the schema revision")
    p.set_defaults(func=_cmd_current)

    calls = subparsers.add_parser("calls", help="audit trail of calls")
    calls_sub = calls.add_subparsers(dest="calls_command", metavar="ACTION", required=True)
    p = calls_sub.add_parser("list", parents=[common], help="recent calls, newest first")
    p.add_argument("--limit", type=int, default=50, help="at most N calls per page (default 50)")
    p.add_argument("--page", type=int, default=1, help="page N of the result (default 1)")
    p.add_argument(
        "--since",
        "--from",
        dest="since",
        help="calls from this date/time (ISO 8601, local time if no zone)",
    )
    p.add_argument("--until", "--to", dest="until", help="calls before this date/time (ISO 8601)")
    p.add_argument("--line", metavar="DID", help="only this line (called number)")
    p.add_argument("--outcome", choices=[o.value for o in CallOutcome], help="only this outcome")
    p.add_argument("--period", help="only this period (business, after_hours, night, ...)")
    p.add_argument("--caller", help="caller number or name contains this text")
    p.add_argument("--person", metavar="ID", help="calls where this person was rung")
    p.add_argument(
        "--min-wait",
        type=float,
        metavar="S",
        help="callers who waited at least S seconds (to connection or hang-up)",
    )
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.set_defaults(func=_cmd_calls_list)
    p = calls_sub.add_parser("show", parents=[common], help="timeline of one call")
    p.add_argument("id", help="call id, or a unique prefix of it")
    p.add_argument("--json", action="store_true", help="JSON object instead of text")
    p.set_defaults(func=_cmd_calls_show)


# -- db ---------------------------------------------------------------------------


def _cmd_upgrade(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        from astreinte_ari.adapters.store.migrate import (
            create_db_engine,
            current_revision,
            mask_url,
            upgrade,
        )

        engine = create_db_engine(url)
        try:
            before = current_revision(engine)
        finally:
            engine.dispose()
        after = upgrade(url)
        print(f"database: {mask_url(url)}")
        if before == after:
            print(f"already at revision {after} (nothing to do)")
        else:
            print(f"upgraded from {before or '(empty)'} to {after}")
        return EXIT_OK

    return run_on_database(ctx, body)


def _cmd_current(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        from astreinte_ari.adapters.store.migrate import (
            create_db_engine,
            current_revision,
            head_revision,
            mask_url,
        )

        ctx.require_database_file(url)
        engine = create_db_engine(url)
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
        head = head_revision()
        state = "up to date" if current == head else f"needs upgrade to {head}"
        print(f"database: {mask_url(url)}")
        print(f"revision: {current or '(empty)'} ({state})")
        return EXIT_OK if current == head else EXIT_FAILURE

    return run_on_database(ctx, body)


# -- calls ------------------------------------------------------------------------


def _cmd_calls_list(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.limit < 1 or args.page < 1:
        print("astreinte: --limit and --page must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    output = "json" if args.json else args.format

    def body(url: str) -> int:
        from astreinte_ari.adapters.store.queries import list_calls

        zone = ctx.display_zone()
        since = parse_when(args.since, "--since", zone)
        until = parse_when(args.until, "--until", zone)
        engine = ctx.open_database(url)
        try:
            calls = list_calls(
                engine, since=since, until=until, did=args.line, outcome=args.outcome,
                period=args.period, caller=args.caller, person=args.person,
                min_wait=args.min_wait, limit=args.limit, offset=(args.page - 1) * args.limit,
            )  # fmt: skip
        finally:
            engine.dispose()
        if output == "json":
            print(json.dumps([c.to_json_dict() for c in calls], indent=2, ensure_ascii=False))
            return EXIT_OK
        if output == "csv":
            _print_csv([c.to_json_dict() for c in calls])
            return EXIT_OK
        if not calls:
            print("no calls")
            return EXIT_OK
        header = ("TIME", "LINE", "CALLER", "OUTCOME", "HOPS", "WAIT", "TALK", "ID")
        rows = [
            (
                local_time(c.started_at, zone),
                f"{c.line_name} {c.did}".strip(),
                caller_label(c.caller_number, c.caller_name)[:40],
                c.outcome or "(in progress)",
                str(c.hop_count),
                duration(c.wait_seconds),
                duration(c.talk_seconds),
                c.id[:8],  # enough for `calls show`, which takes a unique prefix
            )
            for c in calls
        ]
        _print_table(header, rows)
        if len(calls) == args.limit:
            print(f"(page {args.page}; more with --page {args.page + 1})")
        return EXIT_OK

    return run_on_database(ctx, body)


def _print_csv(rows: list[dict[str, Any]]) -> None:
    import csv

    columns = ["id", "started_at", "did", "line_name", "period", "caller_number", "caller_name",
               "outcome", "outcome_detail", "accepted_person_id", "hop_count", "wait_seconds",
               "talk_seconds", "answered_at", "ended_at", "voicemail_path"]  # fmt: skip
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        # Stored text is already escaped (safe_text); a leading =,+,-,@ could still be read
        # as a formula by a spreadsheet: prefix such cells with a quote.
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    return text.lstrip("+-").replace(".", "", 1).isdigit()


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _cmd_calls_show(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        from astreinte_ari.adapters.store.queries import get_call

        engine = ctx.open_database(url)
        try:
            call = get_call(engine, args.id)
        finally:
            engine.dispose()
        if call is None:
            print(f"astreinte: no call with id or id prefix {args.id!r}", file=sys.stderr)
            return EXIT_FAILURE
        if args.json:
            print(json.dumps(call.to_json_dict(), indent=2, ensure_ascii=False))
            return EXIT_OK
        from astreinte_ari.cli.call_timeline import print_call  # rich: only when needed

        print_call(call, sys.stdout, ctx.display_zone())
        return EXIT_OK

    return run_on_database(ctx, body)
