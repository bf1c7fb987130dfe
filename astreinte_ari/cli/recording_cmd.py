"""`astreinte calls recording CALL --out FILE`: an auditor's copy of a recording.

The copy is written only once "recording.accessed" (who: the login user and uid;
the file's SHA-256) is in the audit chain (adapters/store/recording_access.py).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from astreinte_ari.cli.context import EXIT_FAILURE, EXIT_OK, CliContext
from astreinte_ari.cli.database import run_on_database


def register_recording(calls_sub: Any, common: argparse.ArgumentParser) -> None:
    p = calls_sub.add_parser(
        "recording",
        parents=[common],
        help="copy a call's recorded conversation (or voicemail) to a file; audited",
    )
    p.add_argument("id", help="call id, or a unique prefix of it")
    p.add_argument("--out", required=True, type=Path, help="where to write the WAV copy")
    p.add_argument("--voicemail", action="store_true", help="the voicemail, not the conversation")
    p.add_argument("--reason", default="", help="why it is read (kept in the audit record)")
    p.set_defaults(func=_cmd_calls_recording)


def current_user() -> tuple[str, int | None]:
    """Who runs this, as the trail records it (the sudo caller too, when there is one)."""
    user = getpass.getuser()
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and sudo_user != user:
        user = f"{sudo_user} (sudo as {user})"
    return user, os.getuid() if hasattr(os, "getuid") else None


def _cmd_calls_recording(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        from astreinte_ari.adapters.store.queries import get_call
        from astreinte_ari.adapters.store.recording_access import (
            Accessor,
            RecordingKind,
            RecordingUnavailable,
            read_recording_audited,
        )
        from astreinte_ari.adapters.store.voicemail_files import write_file_atomically

        config = ctx.lenient_config()
        root = getattr(config, "recordings_dir", None)
        engine = ctx.open_database(url)
        try:
            call = get_call(engine, args.id)
            if call is None:
                print(f"astreinte: no call with id or id prefix {args.id!r}", file=sys.stderr)
                return EXIT_FAILURE
            kind = RecordingKind.VOICEMAIL if args.voicemail else RecordingKind.CONVERSATION
            user, uid = current_user()
            try:
                data = read_recording_audited(
                    engine, call.id, kind, root, Accessor(user, "cli", uid), purpose=args.reason
                )
            except RecordingUnavailable as exc:
                print(f"astreinte: {exc}", file=sys.stderr)
                return EXIT_FAILURE
        finally:
            engine.dispose()
        write_file_atomically(args.out, data)
        print(f"{kind.value} of call {call.id} written to {args.out} ({len(data)} bytes); "
              f"access recorded in the audit trail as {user}")  # fmt: skip
        return EXIT_OK

    return run_on_database(ctx, body)
