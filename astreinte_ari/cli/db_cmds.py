"""`astreinte db upgrade|current` and `astreinte calls list|show|recording` (timeline:
call_timeline; recording: cli/recording_cmd.py).

The database comes from `--url`, else from the configuration given with `-c`
(or the ASTREINTE_CONFIG environment variable): see cli/context.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.cli.context import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliContext
from astreinte_ari.cli.database import (
    add_date_range,
    database_options,
    parse_when,
    run_on_database,
)
from astreinte_ari.cli.formatting import caller_label, duration, local_time
from astreinte_ari.cli.output import (
    add_format_options,
    add_limit_options,
    emit_rows,
    limit_notice,
    print_table,
)
from astreinte_ari.cli.recording_cmd import register_recording

if TYPE_CHECKING:  # SQLAlchemy is heavy: imported when a command reads the database
    from astreinte_ari.adapters.store.queries import CallFilters


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
    add_limit_options(p, "calls", all_flag=True)
    p.add_argument("--page", type=int, default=1, help="page N of the result (default 1)")
    add_date_range(p, "calls")
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
    add_format_options(p)
    p.set_defaults(func=_cmd_calls_list)
    p = calls_sub.add_parser("show", parents=[common], help="timeline of one call")
    p.add_argument("id", help="call id, or a unique prefix of it")
    p.add_argument("--json", action="store_true", help="JSON object instead of text")
    p.set_defaults(func=_cmd_calls_show)
    register_recording(calls_sub, common)


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
    limit = None if args.no_limit else args.limit

    def body(url: str) -> int:
        from astreinte_ari.adapters.store.queries import count_calls, list_calls

        zone = ctx.display_zone()
        since = parse_when(args.since, "--since", zone)
        until = parse_when(args.until, "--until", zone)
        filters: CallFilters = {
            "since": since, "until": until, "did": args.line, "outcome": args.outcome,
            "period": args.period, "caller": args.caller, "person": args.person,
            "min_wait": args.min_wait,
        }  # fmt: skip
        engine = ctx.open_database(url)
        try:
            offset = 0 if limit is None else (args.page - 1) * limit
            calls = list_calls(engine, limit=limit, offset=offset, **filters)
            total = len(calls) if limit is None else count_calls(engine, **filters)
        finally:
            engine.dispose()
        rows = [c.to_json_dict() for c in calls]
        # json: every field of the call (as `calls show --json` without hops); csv: the
        # columns a spreadsheet needs.
        columns = _CSV_COLUMNS if args.format == "csv" else _json_columns()
        emit_rows(args.format, rows, columns, lambda: _print_calls_table(calls, zone))
        if args.format == "table" and limit is not None and len(calls) == limit:
            print(f"(page {args.page}; more with --page {args.page + 1})")
        limit_notice(len(calls), total, "calls", skipped=offset)
        return EXIT_OK

    return run_on_database(ctx, body)


_CSV_COLUMNS = ["id", "started_at", "did", "line_name", "period", "caller_number", "caller_name",
                "outcome", "outcome_detail", "accepted_person_id", "hop_count", "wait_seconds",
                "talk_seconds", "answered_at", "ended_at", "voicemail_path"]  # fmt: skip


def _json_columns() -> list[str]:
    from astreinte_ari.adapters.store.queries import CallSummary

    names = [f.name for f in dataclasses.fields(CallSummary)]
    return names if "wait_seconds" in names else [*names, "wait_seconds"]


def _print_calls_table(calls: list[Any], zone: tzinfo | None) -> None:
    if not calls:
        print("no calls")
        return
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
    print_table(header, rows)


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
