"""`astreinte rota request|consent|approve|refuse|cancel|changes|export-overrides`:
self-service swaps and covers from the command line (app/rota_changes.py).

Who acts is `--as PERSON`; a person listed in the team's `managers` acts as a
manager. Times are local to the team's zone ("2026-03-07 10:00", or a date for
midnight). Refusals print the rule: `astreinte: refused [double_booking] ...`.
`with_approved_changes` gives `who`, `rota show` and `check` the approved changes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from astreinte_ari.cli.context import CHECKING, EXIT_FAILURE, CliContext, failure, usage_error
from astreinte_ari.cli.database import database_options, run_on_database
from astreinte_ari.cli.output import add_format_options, emit_rows, print_table
from astreinte_ari.config.model import AppConfig, TeamConfig

if TYPE_CHECKING:
    from astreinte_ari.app.rota_changes import RotaChanges
    from astreinte_ari.schedule.changes import ChangeRequest

CHANGE_COLUMNS = ("id", "team", "rota", "kind", "status", "requester", "counterpart", "start",
                  "end", "swap_start", "swap_end", "reason", "requested_at", "consented_at",
                  "decided_by", "decided_at", "decision_note")  # fmt: skip


def register(rota_sub: Any) -> None:
    common = database_options()
    request = rota_sub.add_parser(
        "request", parents=[common], help="ask for a cover (take a slot) or a swap"
    )
    request.add_argument("--team", required=True)
    request.add_argument("--rota", required=True)
    request.add_argument("--kind", required=True, choices=("cover", "swap"))
    request.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar='"YYYY-MM-DD HH:MM"',
        help="start of the slot, local time (cover: taken; swap: given away)",
    )
    request.add_argument("--to", dest="end", required=True, metavar='"YYYY-MM-DD HH:MM"')
    request.add_argument(
        "--with",
        dest="counterpart",
        metavar="PERSON",
        help="swap: the colleague; cover: who holds it (found if not given)",
    )
    request.add_argument(
        "--swap-from",
        metavar='"YYYY-MM-DD HH:MM"',
        help="swap: start of the colleague's slot taken in exchange",
    )
    request.add_argument("--swap-to", metavar='"YYYY-MM-DD HH:MM"')
    request.add_argument("--as", dest="actor", required=True, metavar="PERSON")
    request.add_argument("--reason", default="")
    request.set_defaults(func=cmd_request)  # fmt: skip

    for name, helptext in (
        ("consent", "the colleague asked agrees to a swap"),
        ("approve", "a manager approves (the colleague asked: agrees)"),
        ("refuse", "a manager, or the colleague asked, refuses"),
        ("cancel", "the requester withdraws a pending request"),
    ):
        step = rota_sub.add_parser(name, parents=[common], help=helptext)
        step.add_argument("id", help="the request's id (astreinte rota changes)")
        step.add_argument("--as", dest="actor", required=True, metavar="PERSON")
        if name in ("approve", "refuse"):
            step.add_argument("--note", default="")
        step.set_defaults(func=cmd_step, step=name)

    listing = rota_sub.add_parser("changes", parents=[common], help="list change requests")
    listing.add_argument("--team")
    listing.add_argument("--person", help="requested by or asked of this person")
    listing.add_argument("--status", choices=("requested", "approved", "refused", "cancelled"))
    add_format_options(listing)
    listing.set_defaults(func=cmd_changes)

    export = rota_sub.add_parser(
        "export-overrides", parents=[common],
        help="approved changes as YAML `overrides:` entries for the team file",
    )  # fmt: skip
    export.add_argument("--team")
    export.set_defaults(func=cmd_export)


def _service(ctx: CliContext, url: str) -> RotaChanges:
    from astreinte_ari.app.compose import rota_changes_service

    config = ctx.config(CHECKING)
    return rota_changes_service(ctx.open_database(url), lambda: config)


def _refused(body: Callable[[], int]) -> int:
    from astreinte_ari.schedule.changes import ChangeRefused

    try:
        return body()
    except ChangeRefused as exc:
        print(f"astreinte: refused [{exc.rule}] {exc.message}", file=sys.stderr)
        return EXIT_FAILURE


def _team(config: AppConfig, name: str) -> TeamConfig:
    team = config.teams.get(name)
    if team is None:
        raise failure(f"unknown team {name!r} (teams: {', '.join(config.teams)})")
    return team


def _person(team_name: str, team: TeamConfig, person: str | None, option: str) -> None:
    if person is not None and person not in team.people:
        known = ", ".join(team.people)
        raise failure(f"{option}: unknown person {person!r} in team {team_name} ({known})")


def _local(text: str | None, option: str, zone: ZoneInfo) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise usage_error(f'{option}: not a time like "2026-03-07 10:00": {text!r}') from None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def cmd_request(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config(CHECKING)
    team = _team(config, args.team)
    _person(args.team, team, args.actor, "--as")
    _person(args.team, team, args.counterpart, "--with")
    zone = ZoneInfo(team.timezone or config.timezone)
    start, end = _local(args.start, "--from", zone), _local(args.end, "--to", zone)
    assert start is not None and end is not None  # required options
    if end <= start:
        raise usage_error("--to must be after --from")

    def body(url: str) -> int:
        made = _service(ctx, url).request(
            actor=args.actor, team=args.team, rota=args.rota, kind=args.kind, start=start,
            end=end, counterpart=args.counterpart,
            swap_start=_local(args.swap_from, "--swap-from", zone),
            swap_end=_local(args.swap_to, "--swap-to", zone), reason=args.reason,
        )  # fmt: skip
        waits = "the colleague's consent" if made.kind == "swap" else "a manager's approval"
        print(f"requested {made.id}: {_describe(made, zone)}; waiting for {waits}")
        return 0

    return run_on_database(ctx, lambda url: _refused(lambda: body(url)))


def cmd_step(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config(CHECKING)

    def body(url: str) -> int:
        changes = _service(ctx, url)
        request = changes.store.get(args.id)
        team = _team(config, request.team)
        _person(request.team, team, args.actor, "--as")
        manager = args.actor in team.managers
        if args.step == "consent":
            done = changes.consent(args.id, actor=args.actor)
        elif args.step == "approve":
            done = changes.approve(args.id, actor=args.actor, as_manager=manager, note=args.note)
        elif args.step == "refuse":
            done = changes.refuse(args.id, actor=args.actor, as_manager=manager, note=args.note)
        else:
            done = changes.cancel(args.id, actor=args.actor)
        zone = ZoneInfo(team.timezone or config.timezone)
        state = done.status
        if done.status == "requested" and done.consented:
            state = "agreed by the colleague; waiting for a manager's approval"
        print(f"{done.id} {state}: {_describe(done, zone)}")
        return 0

    return run_on_database(ctx, lambda url: _refused(lambda: body(url)))


def _describe(request: ChangeRequest, zone: ZoneInfo) -> str:
    def when(at: datetime) -> str:
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    span = f"{when(request.start)} -> {when(request.end)}"
    if request.kind == "cover":
        return f"{request.requester} covers {request.counterpart} on {request.rota} {span}"
    text = f"{request.counterpart} takes {request.requester}'s {request.rota} {span}"
    if request.swap_start is not None and request.swap_end is not None:
        text += (
            f", {request.requester} takes {when(request.swap_start)} -> {when(request.swap_end)}"
        )
    return text


def _rows(requests: Sequence[ChangeRequest], zone: ZoneInfo) -> list[dict[str, object]]:
    rows = []
    for request in requests:
        row: dict[str, object] = {c: getattr(request, c, None) for c in CHANGE_COLUMNS}
        for key in ("start", "end", "swap_start", "swap_end", "requested_at", "consented_at",
                    "decided_at"):  # fmt: skip
            value = row[key]
            row[key] = value.astimezone(zone) if isinstance(value, datetime) else None
        rows.append(row)
    return rows


def cmd_changes(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        config = ctx.config(CHECKING)
        zone = ZoneInfo(config.timezone)
        requests = _service(ctx, url).list(team=args.team, person=args.person, status=args.status)
        rows = _rows(requests, zone)

        def table() -> None:
            if not requests:
                print("no change requests")
                return
            header = ("id", "team", "rota", "status", "what", "reason", "decided by")
            print_table(header, [
                (r.id, r.team, r.rota, r.status + ("*" if r.consented and r.pending else ""),
                 _describe(r, zone), r.reason, r.decided_by or "-")
                for r in requests
            ])  # fmt: skip

        emit_rows(args.format, rows, CHANGE_COLUMNS, table)
        return 0

    return run_on_database(ctx, lambda url: _refused(lambda: body(url)))


def cmd_export(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.schedule.change_export import export_overrides_yaml

    def body(url: str) -> int:
        config = ctx.config(CHECKING)
        teams = [args.team] if args.team else list(config.teams)
        changes = _service(ctx, url)
        for name in teams:
            team = _team(config, name)
            overrides = changes.overrides(name)
            print(f"# team {name}: {len(overrides)} approved change override(s)")
            if overrides:
                print(export_overrides_yaml(overrides, ZoneInfo(team.timezone or "UTC")))
        return 0

    return run_on_database(ctx, lambda url: _refused(lambda: body(url)))


def with_approved_changes(ctx: CliContext, config: AppConfig) -> AppConfig:
    """The configuration as the service uses it: the YAML plus the changes approved in
    the database. Without a readable database, the YAML alone, said on stderr."""
    from astreinte_ari.adapters.store.migrate import sqlite_file

    try:
        url = config.database_url()
        path = sqlite_file(url)
        if path is not None and not path.exists():
            return config  # no database yet: no change can have been approved
        engine = ctx.open_database(url)
        try:
            from astreinte_ari.adapters.store.rota_changes import RotaChangeStore
            from astreinte_ari.app.rota_changes import overrides_by_team
            from astreinte_ari.schedule.changes import apply_changes

            approved = RotaChangeStore(engine).list(status="approved")
        finally:
            engine.dispose()
    except Exception as exc:  # `check` must work on a machine without the database
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"note: approved rota changes not read ({reason}): YAML only", file=sys.stderr)
        return config
    return apply_changes(config, overrides_by_team(approved))


def print_approved_changes(yaml_config: AppConfig, config: AppConfig, now: datetime) -> None:
    """`check`: the approved changes from the database not over yet, marked as such."""
    for name, team in config.teams.items():
        extra = team.overrides[len(yaml_config.teams[name].overrides) :]
        current = [o for o in extra if o.to > now]
        if not current:
            continue
        zone = ZoneInfo(team.timezone or config.timezone)
        print(f"Approved changes of team {name} (database, not in the YAML):")
        for o in current:
            print(
                f"  rota {o.rota}: {o.person} {o.from_.astimezone(zone):%Y-%m-%d %H:%M} -> "
                f"{o.to.astimezone(zone):%Y-%m-%d %H:%M}  override ({o.reason}; "
                f"requested by {o.requested_by})"
            )
