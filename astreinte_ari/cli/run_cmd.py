"""`astreinte run`: the long-running service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

log = logging.getLogger("astreinte_ari.run")


def register(sub: Any) -> None:
    parser = sub.add_parser("run", help="run the on-call service (attaches to Asterisk over ARI)")
    parser.add_argument(
        "-c", "--config", default=os.environ.get("ASTREINTE_CONFIG"), help="YAML configuration"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from astreinte_ari.adapters.store.migrate import DatabaseNotMigrated
    from astreinte_ari.config.loader import ConfigError, load_config
    from astreinte_ari.wiring import StartupError, run_service

    if not getattr(args, "verbose", False):
        logging.getLogger("alembic").setLevel(logging.WARNING)  # chatty schema checks
    if not args.config:
        print("astreinte run: no configuration: give -c FILE or set ASTREINTE_CONFIG")
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue)
        print(f"astreinte run: {len(exc.issues)} error(s) in {args.config}; not started")
        return 1
    try:
        return asyncio.run(run_service(config))
    except DatabaseNotMigrated as exc:
        print(f"astreinte run: {exc}")
        return 2
    except StartupError as exc:
        log.critical("%s", exc)
        print(f"astreinte run: {exc}")
        return exc.exit_code
