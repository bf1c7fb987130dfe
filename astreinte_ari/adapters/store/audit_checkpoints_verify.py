"""`audit verify`'s checkpoint part: signatures, sequence, the chain at each checkpoint,
records left uncovered, and the witness (see audit_checkpoints.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, select

from astreinte_ari.adapters.store.audit_checkpoints import (
    Checkpoint,
    PublicKey,
    all_checkpoints,
    check_signature,
    link,
    read_witness,
)
from astreinte_ari.adapters.store.audit_log import GENESIS_HASH, audit_log_table


class Findings(Protocol):
    checkpoints: int
    witnessed: int

    def add(self, where: str, what: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    keys: Sequence[PublicKey]
    # Records older than this and not covered by a checkpoint are a finding (the
    # service signs every interval when the head moved): None to skip.
    max_uncovered: timedelta | None = timedelta(hours=1)
    witness: Path | None = None


def verify_checkpoints(
    conn: Connection, report: Findings, policy: CheckpointPolicy, now: datetime
) -> None:
    stored = all_checkpoints(conn)
    report.checkpoints = len(stored)
    hashes = _hashes_at(conn, [c.seq for c in stored])
    # The checkpoints are a hash chain: the newest one's signature vouches for every
    # earlier one through the links, so signatures are checked where they prove
    # something new: the newest checkpoint, and the last one of each key (35,040
    # signatures a year would cost seconds; the links cost microseconds).
    vouching = {c.key_id: c.no for c in stored}
    if stored:
        vouching["(newest)"] = stored[-1].no
    keys = {k.key_id: k for k in policy.keys}
    previous: Checkpoint | None = None
    rewritten = False
    for checkpoint in stored:
        where = f"checkpoint {checkpoint.no} (seq {checkpoint.seq}, {checkpoint.at})"
        if checkpoint.no in vouching.values():
            problem = check_signature(checkpoint, policy.keys)
        else:
            problem = _key_problem(checkpoint, keys)
        if problem is not None:
            report.add(where, problem)
        expected_no = previous.no + 1 if previous else 1
        expected_prev = link(previous) if previous else GENESIS_HASH
        if checkpoint.no != expected_no or checkpoint.prev != expected_prev:
            report.add(
                where,
                f"checkpoint(s) before it missing or altered: expected no {expected_no} "
                "and a link to the one before",
            )
        if not rewritten and hashes.get(checkpoint.seq) != checkpoint.head_hash:
            rewritten = True  # the first contradiction says when: later ones follow from it
            report.add(
                where,
                f"TAMPERED: signed with hash {checkpoint.head_hash[:16]}..., the log now has "
                f"{(hashes.get(checkpoint.seq) or 'no record')[:16]}...: records up to seq "
                f"{checkpoint.seq} were rewritten after {checkpoint.at}",
            )
        previous = checkpoint
    if policy.max_uncovered is not None:
        _uncovered(conn, report, previous, now - policy.max_uncovered)
    if policy.witness is not None:
        _against_witness(report, stored, read_witness(policy.witness))


def _key_problem(checkpoint: Checkpoint, keys: dict[str, PublicKey]) -> str | None:
    """Without checking the signature: is its key known and valid on its date?"""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return f"signed by unknown key {checkpoint.key_id}"
    at = datetime.fromisoformat(checkpoint.at)
    if not key.covers(at):
        return f"key {checkpoint.key_id} was not valid on {at:%Y-%m-%d}"
    return None


def _hashes_at(conn: Connection, seqs: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(seqs), 500):  # bounded IN lists
        chunk = seqs[start : start + 500]
        rows = conn.execute(
            select(audit_log_table.c.seq, audit_log_table.c.hash).where(
                audit_log_table.c.seq.in_(chunk)
            )
        )
        found.update((int(seq), str(value)) for seq, value in rows)
    return found


def _uncovered(
    conn: Connection, report: Findings, last: Checkpoint | None, older_than: datetime
) -> None:
    covered = last.seq if last else 0
    oldest = conn.execute(
        select(audit_log_table.c.seq, audit_log_table.c.at)
        .where(audit_log_table.c.seq > covered)
        .order_by(audit_log_table.c.seq)
        .limit(1)
    ).first()
    if oldest is not None and oldest.at < older_than:
        report.add(
            f"audit_log seq {oldest.seq}",
            f"not covered by any signed checkpoint although written {oldest.at:%Y-%m-%d %H:%M} "
            "UTC: the newest checkpoints were deleted, or the service stopped signing",
        )


def _against_witness(
    report: Findings, stored: list[Checkpoint], witnessed: list[Checkpoint]
) -> None:
    by_no = {c.no: c for c in stored}
    report.witnessed = len(witnessed)
    for seen in witnessed:
        mine = by_no.get(seen.no)
        if mine is None:
            report.add(f"checkpoint {seen.no}", "in the witness, not in the database (deleted)")
        elif mine != seen:
            report.add(f"checkpoint {seen.no}", "differs from the witness's copy (edited)")
