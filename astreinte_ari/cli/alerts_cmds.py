"""`astreinte alerts list|show|ack` and `astreinte shifts`.

Acknowledging from the command line works while the service runs: the state
is in the database, and the service's next reminder finds the alert closed.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from astreinte_ari.cli.context import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliContext, failure
from astreinte_ari.cli.output import (
    add_format_options,
    add_limit_options,
    emit_rows,
    limit_notice,
    more_hint,
)


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="database URL (overrides the configuration)")
    common.add_argument("-c", "--config", help="configuration file (default: $ASTREINTE_CONFIG)")

    alerts = subparsers.add_parser("alerts", help="alerts waiting for acknowledgement")
    sub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", parents=[common], help="open alerts (newest first)")
    p.add_argument("--all", action="store_true", help="also acknowledged/closed alerts")
    add_limit_options(p, "alerts", all_flag=False)  # --all is taken: closed ones too
    add_format_options(p)
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser(
        "show", parents=[common], help="one alert and its history (each message, each call step)"
    )
    p.add_argument("id", help="alert id, or a unique prefix of it (4+ characters)")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("ack", parents=[common], help="acknowledge an alert")
    p.add_argument("id", help="alert id, or a unique prefix of it (4+ characters)")
    p.add_argument("--by", help="who takes it in charge (default: your login)")
    p.set_defaults(func=_cmd_ack)

    p = subparsers.add_parser(
        "shifts", parents=[common], help="state of the current and next shift starts"
    )
    add_format_options(p)
    p.set_defaults(func=_cmd_shifts)


def _load(ctx: CliContext, whole: str | None = None) -> tuple[Any, str]:
    """(configuration, database URL). Listing and acknowledging alerts only need the
    database: a configuration with errors is read leniently (cli/context.py);
    whole: the command's name if it needs all of it."""
    if not getattr(ctx.args, "verbose", False):
        logging.getLogger("alembic").setLevel(logging.WARNING)  # chatty on import
    config = ctx.whole_config(whole) if whole else ctx.lenient_config()
    if not ctx.args.url and config is None:
        raise failure("no database given: use --url URL or -c CONFIG")
    return config, ctx.database_url()


def _store(url: str) -> Any:
    from astreinte_ari.adapters.store.alerts import AlertStore
    from astreinte_ari.adapters.store.migrate import create_db_engine

    return AlertStore(create_db_engine(url))


def _when(at: datetime | None, zone: ZoneInfo | None) -> str:
    if at is None:
        return "-"
    return at.astimezone(zone or UTC).strftime("%Y-%m-%d %H:%M")


ALERT_COLUMNS = ("id", "kind", "state", "opened_at", "next_at", "chain", "team", "rota",
                 "line_did", "line_name", "caller_number", "call_id", "acked_at", "acked_by",
                 "ack_via")  # fmt: skip


def _aware(at: datetime | None, zone: ZoneInfo | None) -> datetime | None:
    """For JSON/CSV: in the display zone, with its offset (SQLite gives naive UTC)."""
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone or UTC)


def _alert_row(a: Any, zone: ZoneInfo | None) -> dict[str, object]:
    row = {name: getattr(a, name) for name in ALERT_COLUMNS}
    for name in ("opened_at", "next_at", "acked_at"):
        row[name] = _aware(row[name], zone)
    if not a.is_open:
        row["next_at"] = None  # as in the table: a closed alert has no next step
    return row


def _cmd_list(args: argparse.Namespace, ctx: CliContext) -> int:
    config, url = _load(ctx)
    zone = ZoneInfo(config.timezone) if config and config.timezone else None
    store = _store(url)
    try:
        limit = None if args.no_limit else args.limit
        alerts = store.list(open_only=not args.all, limit=limit)
        total = len(alerts) if limit is None else store.count(open_only=not args.all)
    finally:
        store.engine.dispose()
    rows = [_alert_row(a, zone) for a in alerts]
    emit_rows(args.format, rows, ALERT_COLUMNS, lambda: _print_alerts(args, alerts, config, zone))
    limit_notice(len(alerts), total, "alerts", more_hint(all_flag=False))
    return EXIT_OK


def _print_alerts(
    args: argparse.Namespace, alerts: list[Any], config: Any, zone: ZoneInfo | None
) -> None:
    if not alerts:
        print("no open alert" if not args.all else "no alert")
        return
    print(f"times in {config.timezone if zone else 'UTC'}")
    print(f"{'ID':<12}  {'KIND':<12}  {'STATE':<9}  {'OPENED':<16}  {'NEXT':<16}  WHO / WHAT")
    for a in alerts:
        what = a.line_name or a.rota or ""
        if a.caller_number:
            what += f" from {a.caller_number}"
        if a.acked_by:
            what += f" (acked by {a.acked_by} via {a.ack_via} at {_when(a.acked_at, zone)})"
        # A closed alert has no next step, whatever the row still holds.
        next_at = _when(a.next_at, zone) if a.is_open else "-"
        print(
            f"{a.id:<12}  {a.kind:<12}  {a.state:<9}  {_when(a.opened_at, zone):<16}  "
            f"{next_at:<16}  {','.join(a.chain)}: {what}"
        )


def _cmd_show(args: argparse.Namespace, ctx: CliContext) -> int:
    config, url = _load(ctx)
    zone = ZoneInfo(config.timezone) if config and config.timezone else None
    store = _store(url)
    try:
        alert = store.get(args.id)
        if alert is None:
            print(f"astreinte: no alert {args.id!r} (or the prefix is not unique)", file=sys.stderr)
            return EXIT_FAILURE
        events = store.events(alert.id)
    finally:
        store.engine.dispose()
    print(f"alert {alert.id}: {alert.kind}, {alert.state} (times in {zone or 'UTC'})")
    what = alert.line_name or alert.rota or ""
    if alert.caller_number:  # stored cleaned (safe_text): printable as is
        what += f" from {alert.caller_number}"
    print(f"  about:   {what or '-'}")
    print(f"  call:    {alert.call_id or '-'}")
    print(f"  opened:  {_when_s(alert.opened_at, zone)}")
    if alert.acked_by:
        print(f"  acked:   {_when_s(alert.acked_at, zone)} by {alert.acked_by} via {alert.ack_via}")
    print(f"  chain:   {' > '.join(alert.chain) or '-'}")
    for at, event, person, channel, detail in events:
        who = "/".join(x for x in (person, channel) if x)
        print(f"  {_when_s(at, zone)}  {event:<10} {who:<14} {detail}".rstrip())
    return EXIT_OK


def _when_s(at: datetime | None, zone: ZoneInfo | None) -> str:
    """To the second: the steps of one voice call are seconds apart."""
    if at is None:
        return "-"
    if at.tzinfo is None:  # SQLite gives naive UTC back
        at = at.replace(tzinfo=UTC)
    return at.astimezone(zone or UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cmd_ack(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.alerting.engine import ack_alert

    config, url = _load(ctx)
    store = _store(url)
    by = args.by or f"cli:{getpass.getuser()}"
    now = datetime.now(UTC)
    alert = ack_alert(store, args.id, by=by, via="cli", now=now)
    store.engine.dispose()
    if alert is None:
        print(f"astreinte: no open alert {args.id!r}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"alert {alert.id} acknowledged by {by}")
    _tell_webhooks(config, alert, by, now)
    return EXIT_OK


def _tell_webhooks(config: Any, alert: Any, by: str, now: datetime) -> None:
    """The acknowledgement's events, left in the webhook spool: the running service
    delivers them within 30 s (docs/alerts.md "Webhooks")."""
    from astreinte_ari.config.model import AppConfig

    if not isinstance(config, AppConfig) or config.alerting is None:
        return
    webhooks = config.alerting.webhooks
    if not webhooks:
        return
    from astreinte_ari.adapters.notify.webhook_spool import DeliverySpool
    from astreinte_ari.alerting.events import ack_events, build_event

    spool = DeliverySpool(config.journal_dir / "webhooks")
    try:
        told = sum(
            spool.save_for(
                webhooks, build_event(event, alert, config=config, at=now, person_id=by, via="cli")
            )
            for event in ack_events(alert)
        )
    except OSError as exc:
        print(f"astreinte: webhooks not told: {exc}", file=sys.stderr)
        return
    if told:
        print(f"webhooks: {told} delivery(ies) left for the running service to send")


SHIFT_COLUMNS = ("team", "rota", "person_id", "start", "end", "status")


def _cmd_shifts(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.alerting.shifts import shift_states

    config, url = _load(ctx, whole="shifts (rotas and alerting)")
    if config is None:
        print("astreinte: `shifts` needs the configuration (-c)", file=sys.stderr)
        return EXIT_USAGE
    zone = ZoneInfo(config.timezone)
    store = _store(url)
    try:
        states = shift_states(config, store, datetime.now(UTC))
    finally:
        store.engine.dispose()
    rows = [
        {"team": s.spec.team, "rota": s.spec.rota, "person_id": s.shift.person_id,
         "start": _aware(s.shift.start, zone), "end": _aware(s.shift.end, zone),
         "status": s.status}
        for s in states
    ]  # fmt: skip
    emit_rows(args.format, rows, SHIFT_COLUMNS, lambda: _print_shifts(states, zone))
    return EXIT_OK


def _print_shifts(states: list[Any], zone: ZoneInfo) -> None:
    if not states:
        print("no shift-start alert configured (alerting.shift_start)")
        return
    print(f"{'TEAM/ROTA':<20}  {'FROM':<16}  {'TO':<16}  {'PERSON':<10}  STATE")
    for s in states:
        print(
            f"{s.spec.team + '/' + s.spec.rota:<20}  {_when(s.shift.start, zone):<16}  "
            f"{_when(s.shift.end, zone):<16}  {s.shift.person_id:<10}  {s.status}"
        )
