"""`astreinte doctor` and `astreinte fallback import`: operations commands."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from astreinte_ari.cli.context import OPERATING, CliContext


def register(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor", help="check that Asterisk, the dialplan, sounds, database and files are ready"
    )
    doctor.add_argument("-c", "--config", help="configuration file (default: $ASTREINTE_CONFIG)")
    doctor.set_defaults(func=cmd_doctor)

    fallback = sub.add_parser("fallback", help="calls handled by the dialplan fallback")
    fb_sub = fallback.add_subparsers(dest="fallback_command", metavar="ACTION", required=True)
    imp = fb_sub.add_parser("import", help="import the fallback spool into the audit trail")
    imp.add_argument("-c", "--config", help="configuration file (default: $ASTREINTE_CONFIG)")
    imp.set_defaults(func=cmd_fallback_import)


def cmd_doctor(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.app.doctor import render, run_checks

    loaded = ctx.config(OPERATING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    print(f"astreinte doctor: {loaded.source_path}")
    print(f"  ok    {'configuration':<16} {len(loaded.lines)} line(s), {len(loaded.teams)} team(s)")
    checks = run_checks(loaded)
    print(render(checks))
    failed = sum(not c.ok for c in checks)
    if failed:
        print(f"{failed} problem(s) found: fix them, then run astreinte doctor again.")
        return 1
    print("all checks passed.")
    return 0


def cmd_fallback_import(args: argparse.Namespace, ctx: CliContext) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from astreinte_ari.adapters.fallback.importer import SpoolImportError, import_fallback_spool
    from astreinte_ari.adapters.store.migrate import (
        DatabaseNotMigrated,
        create_db_engine,
        ensure_migrated,
    )
    from astreinte_ari.adapters.store.writer import AuditWriter

    loaded = ctx.config(OPERATING)
    engine = create_db_engine(loaded.database_url())
    writer: AuditWriter | None = None
    try:
        ensure_migrated(engine, config_path=str(loaded.source_path))
        writer = AuditWriter(engine)
        count = len(import_fallback_spool(loaded, writer, engine))
    except (DatabaseNotMigrated, SQLAlchemyError, SpoolImportError) as exc:
        print(f"astreinte: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        if writer is not None:
            writer.close()
        engine.dispose()
    print(f"{count} fallback call(s) imported from {loaded.fallback_spool_dir}")
    return 0
