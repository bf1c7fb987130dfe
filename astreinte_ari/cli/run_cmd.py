"""`astreinte run`: the long-running service."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
from typing import TYPE_CHECKING, Any

from astreinte_ari.cli.context import STARTING, CliContext, CommandExit

if TYPE_CHECKING:
    from astreinte_ari.adapters.systemd import SystemdNotifier
    from astreinte_ari.config.model import AppConfig

log = logging.getLogger("astreinte_ari.run")


def register(sub: Any) -> None:
    parser = sub.add_parser("run", help="run the on-call service (attaches to Asterisk over ARI)")
    parser.add_argument("-c", "--config", help="YAML configuration")
    parser.set_defaults(func=_run)


async def _supervised(config: AppConfig, notifier: SystemdNotifier) -> int:
    """The service, with systemd's watchdog fed from this event loop for its whole life
    (a start stuck waiting for ARI still runs its loop; a frozen loop does not)."""
    from astreinte_ari.adapters.systemd import keep_watchdog
    from astreinte_ari.app.compose import run_service

    watchdog = asyncio.create_task(keep_watchdog(notifier))
    try:
        return await run_service(config, notifier=notifier)
    finally:
        watchdog.cancel()


def _run(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.adapters.store.migrate import DatabaseNotMigrated
    from astreinte_ari.adapters.systemd import SystemdNotifier
    from astreinte_ari.app.compose import StartupError

    if not getattr(args, "verbose", False):
        logging.getLogger("alembic").setLevel(logging.WARNING)  # chatty schema checks
    # A watchdog kill (SIGABRT) then leaves the stack of every thread in the journal:
    # where the event loop was stuck.
    faulthandler.enable()
    notifier = SystemdNotifier.from_env()
    try:
        config = ctx.config(STARTING)
    except CommandExit:
        if ctx.issues:  # systemctl status shows why, beside the journal's lines
            notifier.status(f"not started: {len(ctx.issues)} error(s) in {ctx.path}")
        raise
    try:
        return asyncio.run(_supervised(config, notifier))
    except DatabaseNotMigrated as exc:
        print(f"astreinte run: {exc}")
        notifier.status(f"not started: {str(exc).splitlines()[0]}")
        return 2
    except StartupError as exc:
        log.critical("%s", exc)
        print(f"astreinte run: {exc}")
        notifier.status(f"not started: {exc}")
        return exc.exit_code
    finally:
        notifier.close()
