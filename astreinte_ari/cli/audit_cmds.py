"""`astreinte audit verify|export|verify-export` and `astreinte retention run`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from astreinte_ari.cli.audit_keys import public_keys, register_keygen
from astreinte_ari.cli.context import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliContext, failure
from astreinte_ari.cli.database import (
    add_date_range,
    database_options,
    parse_when,
    run_on_database,
)


def register(subparsers: Any) -> None:
    common = database_options()
    audit = subparsers.add_parser("audit", help="tamper-evident audit log")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    p = sub.add_parser("verify", parents=[common], help="recompute the hash chain, cross-check")
    _range_options(p)
    p.add_argument("--no-domain", action="store_true",
                   help="check the chain only, not calls/hops/transitions against it")  # fmt: skip
    p.add_argument("--open-after", type=int, default=60, metavar="MINUTES",
                   help="report calls still open this long after they started "
                        "(default 60; 0 to skip)")  # fmt: skip
    p.add_argument(
        "--public-key",
        action="append",
        metavar="FILE",
        help="check the signed checkpoints with this public key (repeatable; "
        "default: audit.public_keys and the key beside audit.signing_key_file)",
    )
    p.add_argument(
        "--witness",
        metavar="FILE",
        help="compare the checkpoints with a witness copy: audit.witness_file, or "
        "the service's log (journalctl -u astreinte -o cat > FILE)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("export", parents=[common], help="JSON Lines + manifest, for auditors")
    _range_options(p)
    p.add_argument("--out", required=True, help="directory to write (created if needed)")
    p.add_argument("--key-file", help="HMAC key file (default: audit.export_key_file)")
    p.add_argument("--signing-key", metavar="FILE",
                   help="Ed25519 private key (default: audit.signing_key_file): auditors then "
                        "verify with the public key only")  # fmt: skip
    p.set_defaults(func=_cmd_export)
    p = sub.add_parser("verify-export", help="check an export offline (no database)")
    p.add_argument("dir", help="export directory")
    p.add_argument("--key-file", help="HMAC key file, to check the manifest signature")
    p.add_argument("--public-key", metavar="FILE", help="Ed25519 public key of the signer")
    p.set_defaults(func=_cmd_verify_export)
    register_keygen(sub)

    retention = subparsers.add_parser("retention", help="delete expired recordings, caller IDs")
    rsub = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    p = rsub.add_parser("run", parents=[common], help="apply the retention: block of the config")
    p.set_defaults(func=_cmd_retention)


def _checkpoint_policy(args: argparse.Namespace, ctx: CliContext) -> Any:
    """What `audit verify` checks the signed checkpoints with (None: no key known)."""
    from astreinte_ari.adapters.store.audit_checkpoints_verify import CheckpointPolicy

    try:
        keys = public_keys(ctx.lenient_config(), args.public_key)
    except (OSError, ValueError) as exc:
        raise failure(f"public key: {exc}") from None
    witness = Path(args.witness) if args.witness else None
    if keys is None:
        if witness is not None:
            raise failure("--witness needs a public key to check the checkpoints with")
        return None
    return CheckpointPolicy(keys=keys, witness=witness)


def _range_options(p: argparse.ArgumentParser) -> None:
    add_date_range(p, "records")


def _cmd_verify(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        from astreinte_ari.adapters.store.audit_verify import verify

        since, until = parse_when(args.since, "--since"), parse_when(args.until, "--until")
        engine = ctx.open_database(url)
        try:
            open_after = timedelta(minutes=args.open_after) if args.open_after > 0 else None
            report = verify(
                engine,
                since=since,
                until=until,
                check_domain=not args.no_domain,
                open_after=open_after,
                checkpoints=_checkpoint_policy(args, ctx),
            )
        finally:
            engine.dispose()
        if args.json:
            data = {
                "ok": report.ok,
                "records": report.records,
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
                "calls": report.calls,
                "hops": report.hops,
                "transitions": report.transitions,
                "pre_chain_calls": report.pre_chain_calls,
                "open_calls": report.open_calls,
                "checkpoints": report.checkpoints,
                "witnessed": report.witnessed,
                "problem_count": report.problem_count,
                "problems": [str(p) for p in report.problems],
            }
            print(json.dumps(data, indent=2))
        else:
            span = f"seq {report.first_seq}..{report.last_seq}" if report.records else "none"
            print(f"audit log: {report.records} records checked ({span}); "
                  f"head seq {report.head_seq} {report.head_hash}")  # fmt: skip
            if not args.no_domain:
                print(f"domain:    {report.calls} calls, {report.hops} hops, "
                      f"{report.transitions} transitions compared with the log"
                      + (f" ({report.pre_chain_calls} calls predate the chain, not checkable)"
                         if report.pre_chain_calls else ""))  # fmt: skip
            if report.open_calls:
                print(f"open:      {report.open_calls} call(s) never ended")
            if report.checkpoints or report.witnessed:
                witnessed = (
                    f", {report.witnessed} compared with the witness" if args.witness else ""
                )
                print(f"signed:    {report.checkpoints} checkpoint(s) checked{witnessed}")
            elif _checkpoint_policy(args, ctx) is None:
                print("signed:    checkpoints not checked (no public key: audit.public_keys, "
                      "or --public-key)")  # fmt: skip
            if report.ok:
                print("OK: chain intact, domain rows match the log, no call left open")
            else:
                print(f"FIRST BROKEN LINK: {report.first_broken}")
                print(f"{report.problem_count} problem(s):")
                for problem in report.problems:
                    print(f"  {problem}")
        return EXIT_OK if report.ok else EXIT_FAILURE

    return run_on_database(ctx, body)


def _cmd_export(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        from astreinte_ari.adapters.store.audit_checkpoints import load_private_key
        from astreinte_ari.adapters.store.audit_export import export_log, read_key

        since, until = parse_when(args.since, "--since"), parse_when(args.until, "--until")
        key_file = args.key_file
        config = ctx.lenient_config()
        if config is not None and config.audit is None:
            # Never fall back to an unsigned export because the key's setting is unreadable.
            if key_file is None:
                raise failure(
                    f"the audit section of {config.source_path} cannot be read while the file "
                    "has errors: give the key with --key-file, or fix the file"
                )
            if args.signing_key is None:
                print(
                    "warning: no signed checkpoint in this export: the audit section cannot be "
                    "read (give --signing-key to add one)",
                    file=sys.stderr,
                )
        audit = config.audit if config is not None else None
        if key_file is None and audit is not None and audit.export_key_file is not None:
            key_file = str(audit.export_key_file)
        signing_file = args.signing_key or (audit.signing_key_file if audit is not None else None)
        try:
            key = None if key_file is None else read_key(Path(key_file))
            signing = None if signing_file is None else load_private_key(Path(signing_file))
        except (OSError, ValueError) as exc:
            raise failure(f"key file: {exc}") from None
        engine = ctx.open_database(url)
        try:
            manifest = export_log(
                engine, Path(args.out), since=since, until=until, key=key, signing_key=signing
            )
        finally:
            engine.dispose()
        if signing is not None:
            signed = f"signed (Ed25519, key {manifest['signature']['key_id']})"
        else:
            signed = "signed (HMAC-SHA256)" if key else "unsigned (no key file)"
        print(f"exported {manifest['records']} records (seq {manifest['first_seq']}.."
              f"{manifest['last_seq']}) to {args.out}, {signed}")  # fmt: skip
        print(f"head hash {manifest['head_hash']}")
        return EXIT_OK

    return run_on_database(ctx, body)


def _cmd_verify_export(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.adapters.store.audit_checkpoints import load_public_key
    from astreinte_ari.adapters.store.audit_export import read_key, verify_export

    try:
        key = None if args.key_file is None else read_key(Path(args.key_file))
        public = None if args.public_key is None else load_public_key(Path(args.public_key))
    except (OSError, ValueError) as exc:
        print(f"astreinte: key file: {exc}", file=sys.stderr)
        return EXIT_USAGE
    check = verify_export(Path(args.dir), key=key, public_key=public)
    print(f"{check.records} records, head hash {check.head_hash}, signature {check.signature}")
    if check.ok:
        print("OK: export intact")
        return EXIT_OK
    for problem in check.problems:
        print(f"  {problem}")
    return EXIT_FAILURE


def _cmd_retention(args: argparse.Namespace, ctx: CliContext) -> int:
    def body(url: str) -> int:
        from astreinte_ari.adapters.store.retention import run_retention

        config = ctx.whole_config("retention (it deletes recordings)")
        if config is None:
            raise failure("retention needs the configuration: -c CONFIG")
        engine = ctx.open_database(url)
        try:
            result = run_retention(engine, config.retention, config.recordings_dir)
        finally:
            engine.dispose()
        print(f"recordings deleted: {result.recordings_deleted} "
              f"(already absent: {result.recordings_missing})")  # fmt: skip
        print(f"recorded conversations deleted: {result.call_recordings_deleted}")
        print(f"caller IDs redacted: {result.caller_ids_redacted}")
        for path in result.recordings_refused:
            print(f"  NOT deleted (outside the recordings directory): {path}")
        return EXIT_OK

    return run_on_database(ctx, body, whole="retention (it deletes recordings)")
