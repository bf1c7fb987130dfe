"""`astreinte web login-link PERSON`: a one-time sign-in link, printed (for an admin
who hands it over, and for the demo). The link is audited like an emailed one."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from astreinte_ari.cli.context import CHECKING, CliContext, failure
from astreinte_ari.cli.database import database_options, run_on_database


def register(sub: Any) -> None:
    web = sub.add_parser("web", help="the web planning: sign-in links")
    web_sub = web.add_subparsers(dest="web_command", metavar="ACTION")
    web.set_defaults(func=lambda args, ctx: (web.print_help(), 2)[1])
    link = web_sub.add_parser(
        "login-link", parents=[database_options()], help="print a one-time sign-in link"
    )
    link.add_argument("person", help="person id of the configuration")
    link.set_defaults(func=cmd_login_link)
    token = web_sub.add_parser(
        "api-token", parents=[database_options()],
        help="print a bearer token for a tool acting as a person (the JSON API)",
    )  # fmt: skip
    token.add_argument("person", help="person id of the configuration")
    token.add_argument("--days", type=int, default=90, help="valid this many days (default 90)")
    token.add_argument("--label", default="", help="what it is for, kept in the audit trail")
    token.add_argument(
        "--revoke", action="store_true", help="revoke every token of the person instead"
    )
    token.set_defaults(func=cmd_api_token)


def cmd_login_link(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config(CHECKING)
    if config.web is None:
        raise failure("no `web:` section in the configuration (docs/web.md)")
    from astreinte_ari.web.auth import viewer_for

    if viewer_for(config, args.person) is None:
        raise failure(f"nobody called {args.person!r} in any team")

    def body(url: str) -> int:
        from astreinte_ari.app.web_edges import desk_for_cli

        engine = ctx.open_database(url)
        try:
            link = desk_for_cli(config, engine, lambda: datetime.now(UTC)).issue_link(
                args.person, "cli"
            )
        finally:
            engine.dispose()
        minutes = config.web.login_link_minutes if config.web else 15
        print(link)
        print(f"valid {minutes} minutes, once; audited", file=sys.stderr)
        return 0

    return run_on_database(ctx, body)


def cmd_api_token(args: argparse.Namespace, ctx: CliContext) -> int:
    config = ctx.config(CHECKING)
    if config.web is None:
        raise failure("no `web:` section in the configuration (docs/web.md)")
    if not 1 <= args.days <= 3660:
        raise failure("--days: from 1 to 3660")
    from astreinte_ari.web.auth import viewer_for

    if viewer_for(config, args.person) is None:
        raise failure(f"nobody called {args.person!r} in any team")

    def body(url: str) -> int:
        from astreinte_ari.app.web_edges import desk_for_cli

        engine = ctx.open_database(url)
        try:
            desk = desk_for_cli(config, engine, lambda: datetime.now(UTC))
            if args.revoke:
                count = desk.store.revoke_api_tokens(args.person, datetime.now(UTC))
                print(f"revoked {count} token(s) of {args.person}; audited", file=sys.stderr)
                return 0
            token = desk.issue_api_token(args.person, args.label, args.days)
        finally:
            engine.dispose()
        print(token)
        print(
            f"Authorization: Bearer <this token>; acts as {args.person} for {args.days} "
            "days; shown once, stored hashed; audited",
            file=sys.stderr,
        )
        return 0

    return run_on_database(ctx, body)
