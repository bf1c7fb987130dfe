"""`astreinte audit export` / `verify-export`: the chain as files an auditor keeps.

An export directory holds:
- audit_log.jsonl: one record per line ({seq, at, kind, subject_id, payload,
  prev_hash, hash}; payload is the canonical JSON text, as hashed);
- manifest.json: counts, first/last seq, the prev_hash the export starts from,
  the head hash (the hash of the last exported record), the SHA-256 of the
  data file and a signature over the manifest: Ed25519 with the service's
  checkpoint key (whoever verifies needs only the public key and cannot forge
  an export), or, from older setups, an HMAC-SHA256 with a shared key.

`verify_export` needs nothing but these files and the public key (or the HMAC
key): it recomputes every hash and link, the data file digest and the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from astreinte_ari.adapters.store.audit_checkpoints import key_id
from astreinte_ari.adapters.store.audit_log import GENESIS_HASH, iso, record_hash
from astreinte_ari.adapters.store.audit_verify import hash_before, iter_records

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT = "astreinte-audit-export/1"
DATA_FILE = "audit_log.jsonl"
MANIFEST_FILE = "manifest.json"


def read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < 16:
        raise ValueError(f"key file {path} holds fewer than 16 bytes: too weak to sign with")
    return key


def _signed_body(manifest: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def _signature(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, _signed_body(manifest), hashlib.sha256).hexdigest()


def _check_signature(
    check: ExportCheck,
    signed: dict[str, Any],
    manifest: dict[str, Any],
    key: bytes | None,
    public_key: Ed25519PublicKey | None,
) -> None:
    if signed.get("algorithm") == "Ed25519":
        if public_key is None:
            check.signature = "not checked (no public key)"
            return
        from cryptography.exceptions import InvalidSignature

        try:
            public_key.verify(bytes.fromhex(str(signed.get("value"))), _signed_body(manifest))
        except (InvalidSignature, ValueError):
            check.signature = "INVALID"
            check.problems.append("manifest signature does not match (manifest altered, or "
                                  "signed by another key)")  # fmt: skip
            return
        check.signature = f"valid (Ed25519, key {signed.get('key_id')})"
    elif key is None:
        check.signature = "not checked (no key)"
    elif hmac.compare_digest(str(signed.get("value")), _signature(manifest, key)):
        check.signature = "valid"
    else:
        check.signature = "INVALID"
        check.problems.append("manifest signature does not match (manifest altered or "
                              "wrong key)")  # fmt: skip


def export_log(
    engine: Engine,
    out_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    key: bytes | None = None,
    clock: Any = None,
    signing_key: Ed25519PrivateKey | None = None,
) -> dict[str, Any]:
    """Write the records appended in [since, until) to out_dir; returns the manifest.
    `signing_key` (preferred) or `key` (HMAC, shared) signs the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = out_dir / DATA_FILE
    digest = hashlib.sha256()
    count, first_seq, last_seq, last_hash = 0, None, None, None
    start_prev: str | None = None
    with engine.connect() as conn, data_path.open("wb") as out:
        for row in iter_records(conn, since, until):
            if first_seq is None:
                first_seq = int(row.seq)
                start_prev = hash_before(conn, first_seq) or row.prev_hash
            record = {
                "seq": int(row.seq),
                "at": iso(row.at),
                "kind": row.kind,
                "subject_id": row.subject_id,
                "payload": row.payload,
                "prev_hash": row.prev_hash,
                "hash": row.hash,
            }
            line = (json.dumps(record, sort_keys=True, ensure_ascii=True) + "\n").encode()
            out.write(line)
            digest.update(line)
            count += 1
            last_seq, last_hash = int(row.seq), row.hash
    now = (clock or (lambda: datetime.now(UTC)))()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": iso(now),
        "range": {"from": iso(since), "to": iso(until)},
        "records": count,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "start_prev_hash": start_prev or GENESIS_HASH,
        "head_hash": last_hash or start_prev or GENESIS_HASH,
        "data_file": DATA_FILE,
        "data_sha256": digest.hexdigest(),
        "hash_algorithm": "sha256(seq|at|json(kind)|json(subject_id)|payload|prev_hash)",
    }
    if signing_key is not None:
        manifest["signature"] = {
            "algorithm": "Ed25519",
            "key_id": key_id(signing_key.public_key()),
            "value": signing_key.sign(_signed_body(manifest)).hex(),
        }
    elif key is not None:
        manifest["signature"] = {"algorithm": "HMAC-SHA256", "value": _signature(manifest, key)}
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


@dataclass(slots=True)
class ExportCheck:
    records: int = 0
    head_hash: str | None = None
    signature: str = "absent"  # absent | valid | not checked (no key) | INVALID
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_export(
    directory: Path, *, key: bytes | None = None, public_key: Ed25519PublicKey | None = None
) -> ExportCheck:
    """Check an export offline: data digest, every hash and link, head, signature."""
    check = ExportCheck()
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError) as exc:
        check.problems.append(f"{MANIFEST_FILE}: unreadable ({exc})")
        return check
    if manifest.get("format") != FORMAT:
        check.problems.append(f"{MANIFEST_FILE}: unknown format {manifest.get('format')!r}")
        return check
    signed = manifest.get("signature")
    if isinstance(signed, dict):
        _check_signature(check, signed, manifest, key, public_key)
    data_path = directory / str(manifest.get("data_file", DATA_FILE))
    digest = hashlib.sha256()
    prev_hash = str(manifest.get("start_prev_hash"))
    prev_seq: int | None = None
    try:
        with data_path.open("rb") as data:
            for number, line in enumerate(data, start=1):
                digest.update(line)
                _check_line(check, number, line, prev_seq, prev_hash)
                record = json.loads(line)
                prev_seq, prev_hash = int(record["seq"]), str(record["hash"])
                check.records += 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        check.problems.append(f"{data_path.name}: unreadable ({exc})")
        return check
    check.head_hash = prev_hash
    if digest.hexdigest() != manifest.get("data_sha256"):
        check.problems.append(f"{data_path.name}: SHA-256 differs from the manifest (file altered)")
    if check.records != manifest.get("records"):
        check.problems.append(
            f"{check.records} records, the manifest says {manifest.get('records')}"
        )
    if prev_hash != manifest.get("head_hash"):
        check.problems.append("the last record's hash is not the manifest's head_hash")
    return check


def _check_line(
    check: ExportCheck, number: int, line: bytes, prev_seq: int | None, prev_hash: str
) -> None:
    record = json.loads(line)
    seq = int(record["seq"])
    where = f"line {number} (seq {seq})"
    if prev_seq is not None and seq != prev_seq + 1:
        check.problems.append(f"{where}: records {prev_seq + 1}..{seq - 1} missing")
    if record["prev_hash"] != prev_hash:
        check.problems.append(f"{where}: prev_hash is not the previous record's hash")
    expected = record_hash(seq, record["at"], record["kind"], record["subject_id"],
                           record["payload"], record["prev_hash"])  # fmt: skip
    if expected != record["hash"]:
        check.problems.append(f"{where}: content does not match its hash (record edited)")
