"""The keys behind the audit chain's signed checkpoints: keygen, and which public keys
`audit verify` / `verify-export` check with (configuration and --public-key)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from astreinte_ari.cli.context import EXIT_OK, EXIT_USAGE, CliContext


def register_keygen(sub: Any) -> None:
    p = sub.add_parser(
        "keygen", help="create the Ed25519 key pair that signs checkpoints and exports"
    )
    p.add_argument("--out", required=True, help="private key file to create (mode 0600)")
    p.set_defaults(func=_cmd_keygen)


def _cmd_keygen(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.adapters.store.audit_checkpoints import generate_key

    private = Path(args.out)
    try:
        public, key_id = generate_key(private)
    except FileExistsError:
        print(f"astreinte: {private} exists: refusing to overwrite a signing key")
        return EXIT_USAGE
    print(f"private key {private} (mode 0600: give it to the service user only)")
    print(f"public key  {public} (give it to the auditors), key id {key_id}")
    print("in the YAML:  audit: {signing_key_file: " + str(private) + "}")
    return EXIT_OK


def public_keys(config: Any, files: list[str] | None) -> list[Any] | None:
    """The keys checkpoints are checked with; None when there are none to check with."""
    from astreinte_ari.adapters.store.audit_checkpoints import PublicKey, load_public_key

    keys: list[PublicKey] = [PublicKey(load_public_key(Path(f))) for f in files or []]
    audit = getattr(config, "audit", None)
    if audit is not None:
        base = Path(config.base_dir)
        for listed in audit.public_keys:
            path = listed.file if listed.file.is_absolute() else base / listed.file
            keys.append(PublicKey(load_public_key(path), listed.valid_from, listed.valid_until))
        if audit.signing_key_file is not None:
            beside = Path(audit.signing_key_file).with_suffix(".pub")
            if beside.exists():  # the current key, as keygen left it
                keys.append(PublicKey(load_public_key(beside)))
    return keys or None
