"""`astreinte rota subscribe|feeds|unsubscribe`: calendar URLs people subscribe to.

The URL (`alerting.links.public_url` + /ics/<token>.ics) is printed once, when
the feed is created: only a hash of its token is kept (docs/rotas.md
"Calendar subscription").
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from astreinte_ari.cli.context import EXIT_FAILURE, EXIT_OK, CliContext, failure
from astreinte_ari.cli.database import database_options, run_on_database
from astreinte_ari.cli.output import add_format_options, emit_rows, print_table

FEED_COLUMNS = ("id", "scope", "team", "person", "created_at", "created_by", "revoked_at")


def register(rota_sub: Any) -> None:
    common = database_options()
    sub = rota_sub.add_parser(
        "subscribe", parents=[common], help="create a calendar (ICS) URL to subscribe to"
    )
    sub.add_argument("--team", required=True)
    sub.add_argument("--person", help="person id: only their shifts (default: the whole team)")
    sub.add_argument("--by", help="who asked for it, for the audit trail (default: your login)")
    sub.set_defaults(func=cmd_subscribe)

    feeds = rota_sub.add_parser("feeds", parents=[common], help="the calendar URLs handed out")
    feeds.add_argument("--all", action="store_true", help="revoked ones too")
    add_format_options(feeds)
    feeds.set_defaults(func=cmd_feeds)

    unsub = rota_sub.add_parser(
        "unsubscribe", parents=[common], help="revoke a calendar URL (by its feed id)"
    )
    unsub.add_argument("feed_id", metavar="FEED_ID", help="as `rota feeds` shows it")
    unsub.add_argument("--by", help="who revokes it, for the audit trail (default: your login)")
    unsub.set_defaults(func=cmd_unsubscribe)


def _store(ctx: CliContext, url: str) -> Any:
    from astreinte_ari.adapters.store.calendar_feeds import CalendarFeedStore

    return CalendarFeedStore(ctx.open_database(url))


def cmd_subscribe(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.adapters.store.calendar_feeds import feed_url

    config = ctx.whole_config("rota subscribe")  # the team, its people, the public URL
    if config is None:
        raise failure("rota subscribe needs the configuration: use -c CONFIG")
    team = config.teams.get(args.team)
    if team is None:
        raise failure(f"unknown team {args.team!r} (teams: {', '.join(config.teams)})")
    if args.person and args.person not in team.people:
        raise failure(f"team {args.team} has nobody called {args.person!r}")
    if config.alerting is None:
        raise failure("calendar URLs are served by the links endpoint: configure `alerting:`")
    public_url = config.alerting.links.public_url

    def body(url: str) -> int:
        store = _store(ctx, url)
        try:
            by = args.by or f"cli:{getpass.getuser()}"
            feed, token = store.create(
                team=args.team, person=args.person, by=by, now=datetime.now(UTC)
            )
        finally:
            store.engine.dispose()
        who = f"{args.person} ({args.team})" if args.person else f"team {args.team}"
        print(f"calendar feed {feed.id} for {who}; its URL, shown only now:", file=sys.stderr)
        print(feed_url(public_url, token))
        print(f"revoke it with: astreinte rota unsubscribe {feed.id}", file=sys.stderr)
        return EXIT_OK

    return run_on_database(ctx, body)


def cmd_feeds(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        store = _store(ctx, url)
        try:
            feeds = store.list(include_revoked=args.all)
        finally:
            store.engine.dispose()
        zone = ctx.display_zone()

        def when(at: datetime | None) -> datetime | None:
            return None if at is None else at.astimezone(zone or UTC)

        rows = [
            {"id": f.id, "scope": f.scope, "team": f.team, "person": f.person,
             "created_at": when(f.created_at), "created_by": f.created_by,
             "revoked_at": when(f.revoked_at)}
            for f in feeds
        ]  # fmt: skip

        def table() -> None:
            if not rows:
                print("no calendar feed" + ("" if args.all else " in use"))
                return
            cells = [
                [str(r["id"]), str(r["scope"]), str(r["team"]), str(r["person"] or "-"),
                 _short(r["created_at"]), str(r["created_by"]), _short(r["revoked_at"])]
                for r in rows
            ]  # fmt: skip
            print_table(["id", "scope", "team", "person", "created", "by", "revoked"], cells)

        emit_rows(args.format, rows, FEED_COLUMNS, table)
        return EXIT_OK

    return run_on_database(ctx, body)


def _short(at: object) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if isinstance(at, datetime) else "-"


def cmd_unsubscribe(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        store = _store(ctx, url)
        try:
            by = args.by or f"cli:{getpass.getuser()}"
            feed = store.revoke(args.feed_id, by=by, now=datetime.now(UTC))
        finally:
            store.engine.dispose()
        if feed is None:
            print(f"astreinte: no calendar feed {args.feed_id!r} in use", file=sys.stderr)
            return EXIT_FAILURE
        print(f"calendar feed {feed.id} revoked: its URL now answers 404")
        return EXIT_OK

    return run_on_database(ctx, body)
