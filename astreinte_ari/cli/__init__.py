"""`astreinte` command line: one sub-command module per concern, wired here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from astreinte_ari.cli.context import CliContext, CommandExit

# Each module exposes register(subparsers) and sets `func(args, ctx)` on its parsers:
# every command is handed the run's one CliContext (cli/context.py).
_COMMAND_MODULES = (
    "astreinte_ari.cli.alerts_cmds",
    "astreinte_ari.cli.config_cmds",
    "astreinte_ari.cli.db_cmds",
    "astreinte_ari.cli.audit_cmds",
    "astreinte_ari.cli.report_cmds",
    "astreinte_ari.cli.rota_cmds",
    "astreinte_ari.cli.run_cmd",
    "astreinte_ari.cli.ops_cmds",
    "astreinte_ari.cli.selftest_cmd",
    "astreinte_ari.cli.web_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="astreinte", description="On-call telephone line on Asterisk (ARI)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per line (time, level, logger, message, call_id)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from astreinte_ari.cli.log_format import configure_logging, quiet_third_party

    configure_logging(logging.DEBUG if args.verbose else logging.INFO, args.log_format)
    quiet_third_party(args.verbose)
    func: Callable[[argparse.Namespace, CliContext], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from astreinte_ari.extras import MissingExtra

    try:
        return func(args, CliContext(args))  # the one place a context is built
    except CommandExit as exc:  # a command stopped, with its own words
        for line in exc.out:
            print(line)
        if exc.err:
            print(exc.err, file=sys.stderr)
        return exc.code
    except MissingExtra as exc:  # an optional dependency this command needs
        print(f"astreinte: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
