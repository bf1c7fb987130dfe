"""Signed checkpoints of the audit chain: what a database administrator cannot rewrite.

The hash chain alone proves that the log was not edited *in place*; whoever can
write to the database can still edit a row and recompute every hash after it
(about 20 lines of code). So at regular intervals, at every retention run and
at a clean stop, the service signs the chain's head with an Ed25519 key the
database never holds (a file readable by the service user only), stores the
checkpoint in `audit_checkpoints`, and hands a copy to a witness outside the
database (the service's log, i.e. journald/syslog, and optionally a file on
another disk or host). `audit verify` then checks every checkpoint's signature
and that the chain still has, at each checkpoint's seq, the hash that was
signed: a re-hashed chain contradicts the first checkpoint after the edit.

Checkpoints are numbered without gaps and each names the SHA-256 of the whole
previous checkpoint (its fields and its signature): they form a hash chain of
their own, so the newest signature vouches for every earlier checkpoint, and
deleting one in the middle breaks the sequence. Deleting the newest ones is
seen by comparing with the witness (and by records left uncovered for longer
than the checkpoint interval allows).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, insert, select

from astreinte_ari.adapters.store.audit_log import GENESIS_HASH, iso, read_head
from astreinte_ari.adapters.store.models import UTCDateTime, metadata

if TYPE_CHECKING:  # cryptography is imported where keys are used: the service's
    # store imports this module for its table, and ~9 MB is too much for nothing.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT = "astreinte-checkpoint/1"
# The witness in the service's log: one line per checkpoint, found again by this text.
WITNESS_MARK = "AUDIT CHECKPOINT"
witness_log = logging.getLogger("astreinte_ari.audit.witness")

audit_checkpoints_table = Table(
    "audit_checkpoints",
    metadata,
    Column("no", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("prev", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    no: int  # 1, 2, 3... without gaps
    seq: int  # the last audit record it covers
    head_hash: str  # that record's hash
    at: str  # iso() UTC time of signing
    key_id: str
    prev: str  # link(): SHA-256 of the whole previous checkpoint (GENESIS_HASH for no 1)
    signature: str  # hex Ed25519 signature of signed_bytes()

    def signed_bytes(self) -> bytes:
        return "|".join(
            (FORMAT, str(self.no), str(self.seq), self.head_hash, self.at, self.key_id, self.prev)
        ).encode()

    def witness_line(self) -> str:
        return f"{WITNESS_MARK} {json.dumps(asdict(self), sort_keys=True)}"


def key_id(public: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def link(checkpoint: Checkpoint) -> str:
    """What the next checkpoint names: its fields and its signature, hashed."""
    return hashlib.sha256(
        checkpoint.signed_bytes() + b"|" + checkpoint.signature.encode()
    ).hexdigest()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key (astreinte audit keygen makes one)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_key(private_path: Path) -> tuple[Path, str]:
    """A new key pair: the private key (mode 0600) and `<name>.pub` beside it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.touch(mode=0o600, exist_ok=False)
    private_path.write_bytes(pem)
    public_path = private_path.with_suffix(".pub")
    public_path.write_bytes(public_pem(key.public_key()))
    return public_path, key_id(key.public_key())


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verification key and the dates it signed between (rotation)."""

    key: Ed25519PublicKey
    valid_from: date | None = None
    valid_until: date | None = None  # inclusive

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    def covers(self, at: datetime) -> bool:
        day = at.date()
        return (self.valid_from is None or day >= self.valid_from) and (
            self.valid_until is None or day <= self.valid_until
        )


def last_checkpoint(conn: Connection) -> Checkpoint | None:
    row = conn.execute(
        select(audit_checkpoints_table).order_by(audit_checkpoints_table.c.no.desc()).limit(1)
    ).first()
    return None if row is None else _checkpoint(row)


def all_checkpoints(conn: Connection) -> list[Checkpoint]:
    rows = conn.execute(select(audit_checkpoints_table).order_by(audit_checkpoints_table.c.no))
    return [_checkpoint(row) for row in rows]


def _checkpoint(row: object) -> Checkpoint:
    return Checkpoint(
        no=int(row.no),  # type: ignore[attr-defined]
        seq=int(row.seq),  # type: ignore[attr-defined]
        head_hash=str(row.head_hash),  # type: ignore[attr-defined]
        at=str(iso(row.at)),  # type: ignore[attr-defined]
        key_id=str(row.key_id),  # type: ignore[attr-defined]
        prev=str(row.prev),  # type: ignore[attr-defined]
        signature=str(row.signature),  # type: ignore[attr-defined]
    )


def sign_head(
    engine: Engine,
    key: Ed25519PrivateKey,
    now: datetime,
    *,
    witness_file: Path | None = None,
    force: bool = False,
) -> Checkpoint | None:
    """Sign the chain's head if it moved since the last checkpoint (or `force`), store
    the checkpoint and hand it to the witnesses; None when there was nothing new."""
    with engine.begin() as conn:
        seq, head = read_head(conn)
        last = last_checkpoint(conn)
        if seq == 0 or (last is not None and last.seq == seq and not force):
            return None
        unsigned = Checkpoint(
            no=(last.no + 1) if last else 1,
            seq=seq,
            head_hash=head,
            at=str(iso(now)),
            key_id=key_id(key.public_key()),
            prev=link(last) if last else GENESIS_HASH,
            signature="",
        )
        signature = key.sign(unsigned.signed_bytes()).hex()
        checkpoint = Checkpoint(**{**asdict(unsigned), "signature": signature})
        conn.execute(
            insert(audit_checkpoints_table).values(
                no=checkpoint.no,
                seq=checkpoint.seq,
                head_hash=checkpoint.head_hash,
                at=now,
                key_id=checkpoint.key_id,
                prev=checkpoint.prev,
                signature=checkpoint.signature,
            )
        )
    witness_log.warning(checkpoint.witness_line())  # WARNING: kept by any log setup
    if witness_file is not None:
        try:
            with open(witness_file, "a", encoding="ascii") as handle:
                handle.write(checkpoint.witness_line() + "\n")
        except OSError as exc:
            witness_log.error(
                "checkpoint %d not written to %s: %s", checkpoint.no, witness_file, exc
            )
    return checkpoint


def check_signature(checkpoint: Checkpoint, keys: Iterable[PublicKey]) -> str | None:
    """None if a valid key for its date signed it, else what is wrong."""
    from cryptography.exceptions import InvalidSignature

    at = datetime.fromisoformat(checkpoint.at)
    candidates = [k for k in keys if k.key_id == checkpoint.key_id]
    if not candidates:
        return f"signed by unknown key {checkpoint.key_id}"
    for public in candidates:
        try:
            public.key.verify(bytes.fromhex(checkpoint.signature), checkpoint.signed_bytes())
        except (InvalidSignature, ValueError):
            continue
        if not public.covers(at):
            return f"key {checkpoint.key_id} was not valid on {at:%Y-%m-%d}"
        return None
    return "signature does not match (checkpoint edited or forged)"


def read_witness(path: Path) -> list[Checkpoint]:
    """Checkpoints found in a witness: the witness file, or the service's log
    (`journalctl -u astreinte -o cat > log.txt`)."""
    found: list[Checkpoint] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        at = line.find(WITNESS_MARK)
        if at < 0:
            continue
        try:
            data = json.loads(line[at + len(WITNESS_MARK) :])
            found.append(Checkpoint(**data))
        except (ValueError, TypeError):
            continue
    return found
