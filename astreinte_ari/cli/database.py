"""What the commands that open the audit database share: their --url/-c options,
one way to run them (the database resolved and checked first, its errors turned
into exit statuses), and how they read a time given on the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import datetime, tzinfo

from astreinte_ari.cli.context import EXIT_FAILURE, CliContext, failure, usage_error


def database_options() -> argparse.ArgumentParser:
    """Parent parser with --url and -c, shared by every command that opens the database."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("database")
    where.add_argument("--url", help="database URL (overrides the configuration)")
    where.add_argument(
        "-c", "--config", help="configuration file (default: $ASTREINTE_CONFIG)", default=None
    )
    return common


def run_on_database(ctx: CliContext, body: Callable[[str], int], whole: str | None = None) -> int:
    """Resolve the database and run `body(url)`, mapping database errors to exit codes
    (a CommandExit goes on to main(), worded already). whole: the command's name if it
    needs the whole configuration, not just its database."""
    if not getattr(ctx.args, "verbose", False):
        # Alembic narrates every connection at INFO (even on import): noise for an operator.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from astreinte_ari.adapters.store.migrate import DatabaseNotMigrated, normalize_url
    from astreinte_ari.adapters.store.queries import AmbiguousCallIdError

    try:
        if whole is not None:
            ctx.whole_config(whole)
        url = ctx.database_url()
        try:
            normalize_url(url)
        except (ArgumentError, ValueError):
            # Parse errors quote the URL, password included: say less.
            raise failure("the database URL is not valid") from None
        return int(body(url))
    except (DatabaseNotMigrated, AmbiguousCallIdError) as exc:
        print(f"astreinte: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ArgumentError as exc:  # e.g. unknown driver; the message names no password
        print(f"astreinte: database URL refused: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"astreinte: database error: {reason}", file=sys.stderr)
        return EXIT_FAILURE


def parse_when(text: str | None, option: str, zone: tzinfo | None = None) -> datetime | None:
    """An ISO 8601 date/time from the command line; a naive one is in `zone` (the zone
    times are shown in, CliContext.display_zone), the machine's when None."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise usage_error(f"{option}: not an ISO 8601 date/time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone) if zone else value.astimezone()
    return value


def add_date_range(
    parser: argparse.ArgumentParser,
    noun: str,
    *,
    required: bool = False,
    metavar: str = "WHEN",
    form: str = "ISO 8601 date or date/time, local time if no zone",
) -> None:
    """--since/--until, the same on every command that filters by date (issue 18):
    since inclusive, until exclusive, so consecutive ranges never count a record
    twice. --from/--to, the older spelling of some commands, stay as aliases."""
    parser.add_argument(
        "--since",
        "--from",
        dest="since",
        metavar=metavar,
        required=required,
        help=f"{noun} from this time on, inclusive ({form}; --from is an alias)",
    )
    parser.add_argument(
        "--until",
        "--to",
        dest="until",
        metavar=metavar,
        required=required,
        help=f"{noun} before this time, exclusive ({form}; --to is an alias)",
    )
