"""Signed checkpoints: what someone with database access cannot hide any more.

The attack of the issue: edit a hop, recompute the whole hash chain (the chain
alone then says "intact"); then deleting checkpoints, a rotated key, a witness,
and exports that the auditor verifies with the public key only. SQLite and
PostgreSQL (the `filled` fixture of test_audit_log).
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select, text, update

from astreinte_ari import cli
from astreinte_ari.adapters.store.audit_checkpoints import (
    PublicKey,
    audit_checkpoints_table,
    generate_key,
    load_public_key,
    sign_head,
)
from astreinte_ari.adapters.store.audit_checkpoints_verify import CheckpointPolicy
from astreinte_ari.adapters.store.audit_export import export_log, verify_export
from astreinte_ari.adapters.store.audit_log import (
    GENESIS_HASH,
    audit_log_head_table,
    audit_log_table,
    record_hash,
)
from astreinte_ari.adapters.store.audit_verify import verify
from tests.unit.test_audit_log import engine, filled  # noqa: F401 - fixtures
from tests.unit.test_store import T0

NOW = T0 + timedelta(hours=3)


def _policy(*keys: Ed25519PrivateKey, witness: Path | None = None) -> CheckpointPolicy:
    return CheckpointPolicy(
        keys=[PublicKey(k.public_key()) for k in keys], max_uncovered=None, witness=witness
    )


def _rehash_everything(db: Engine) -> None:
    """The attack: edit one hop record's payload, then recompute every hash after it
    (and the head), so that the chain alone verifies again."""
    with db.begin() as conn:
        rows = conn.execute(select(audit_log_table).order_by(audit_log_table.c.seq)).all()
        target = next(r for r in rows if r.kind == "hop.ended")
        conn.execute(
            text("UPDATE hops SET outcome='accepted' WHERE id=:id"), {"id": target.subject_id}
        )
        prev = GENESIS_HASH
        for row in rows:
            payload = row.payload
            if row.seq == target.seq:
                data = json.loads(payload)
                data["outcome"] = "accepted"
                payload = json.dumps(data, sort_keys=True, separators=(",", ":"))
            at = row.at if isinstance(row.at, str) else row.at.astimezone(UTC).isoformat()
            new = record_hash(row.seq, at, row.kind, row.subject_id, payload, prev)
            conn.execute(
                update(audit_log_table)
                .where(audit_log_table.c.seq == row.seq)
                .values(payload=payload, prev_hash=prev, hash=new)
            )
            prev = new
        conn.execute(update(audit_log_head_table).values(hash=prev))


def test_a_rehashed_chain_is_caught_by_the_first_checkpoint_after_the_edit(
    filled: Engine,  # noqa: F811
) -> None:
    key = Ed25519PrivateKey.generate()
    assert sign_head(filled, key, NOW) is not None
    assert verify(filled, checkpoints=_policy(key), open_after=None).ok
    _rehash_everything(filled)
    chain_only = verify(filled, open_after=None)
    assert chain_only.ok, chain_only.problems  # the chain and domain rows alone: "intact"
    report = verify(filled, checkpoints=_policy(key), open_after=None)
    assert not report.ok
    assert any("TAMPERED" in str(p) and "checkpoint 1" in str(p) for p in report.problems)


def test_deleted_checkpoints_are_seen(filled: Engine, tmp_path: Path) -> None:  # noqa: F811
    key = Ed25519PrivateKey.generate()
    witness = tmp_path / "witness.jsonl"
    for minutes in (0, 15, 30):
        with filled.begin() as conn:  # the head moves between checkpoints
            conn.execute(text("UPDATE audit_log_head SET seq = seq"))
        sign_head(filled, key, NOW + timedelta(minutes=minutes), witness_file=witness, force=True)
    assert verify(filled, checkpoints=_policy(key, witness=witness), open_after=None).ok
    with filled.begin() as conn:
        conn.execute(audit_checkpoints_table.delete().where(audit_checkpoints_table.c.no == 2))
    report = verify(filled, checkpoints=_policy(key), open_after=None)
    assert any("checkpoint 3" in str(p) and "missing or altered" in str(p) for p in report.problems)
    # Deleting the newest one leaves no gap: the witness still has it.
    with filled.begin() as conn:
        conn.execute(audit_checkpoints_table.delete().where(audit_checkpoints_table.c.no == 3))
    report = verify(filled, checkpoints=_policy(key, witness=witness), open_after=None)
    assert any("in the witness, not in the database" in str(p) for p in report.problems)


def test_records_left_uncovered_too_long_are_a_finding(filled: Engine) -> None:  # noqa: F811
    key = Ed25519PrivateKey.generate()
    policy = CheckpointPolicy(keys=[PublicKey(key.public_key())], max_uncovered=timedelta(hours=1))
    later = datetime.now(UTC) + timedelta(hours=2)  # records are appended at the real time
    report = verify(filled, checkpoints=policy, open_after=None, now=later)
    assert any("not covered by any signed checkpoint" in str(p) for p in report.problems)
    sign_head(filled, key, NOW)
    assert verify(filled, checkpoints=policy, open_after=None, now=later).ok


def test_a_rotated_key_still_verifies_the_checkpoints_it_signed(
    filled: Engine,  # noqa: F811
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    sign_head(filled, old, NOW)
    sign_head(filled, new, NOW + timedelta(days=2), force=True)
    keys = [
        PublicKey(old.public_key(), valid_until=NOW.date()),
        PublicKey(new.public_key(), valid_from=(NOW + timedelta(days=1)).date()),
    ]
    policy = CheckpointPolicy(keys=keys, max_uncovered=None)
    assert verify(filled, checkpoints=policy, open_after=None).ok
    # The old key signing after its retirement date: refused (a stolen old key).
    sign_head(filled, old, NOW + timedelta(days=3), force=True)
    report = verify(filled, checkpoints=policy, open_after=None)
    assert any("was not valid on" in str(p) for p in report.problems)
    unknown = CheckpointPolicy(keys=[PublicKey(new.public_key())], max_uncovered=None)
    assert any("unknown key" in str(p) for p in verify(filled, checkpoints=unknown).problems)


def test_an_export_is_verified_with_the_public_key_alone(
    filled: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    private, public = tmp_path / "signing.key", tmp_path / "signing.pub"
    generate_key(private)
    from astreinte_ari.adapters.store.audit_checkpoints import load_private_key

    export_log(filled, tmp_path / "out", signing_key=load_private_key(private))
    check = verify_export(tmp_path / "out", public_key=load_public_key(public))
    assert check.ok and check.signature.startswith("valid (Ed25519"), check
    manifest = tmp_path / "out" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["records"] += 1  # a forger without the private key
    manifest.write_text(json.dumps(data))
    check = verify_export(tmp_path / "out", public_key=load_public_key(public))
    assert check.signature == "INVALID" and not check.ok


def test_keygen_makes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    out = tmp_path / "keys" / "audit-signing.key"
    assert cli.main(["audit", "keygen", "--out", str(out)]) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.with_suffix(".pub").exists()
    assert cli.main(["audit", "keygen", "--out", str(out)]) == 2  # never overwritten


def test_validity_dates_are_inclusive() -> None:
    key = PublicKey(Ed25519PrivateKey.generate().public_key(), date(2026, 1, 1), date(2026, 6, 30))
    assert key.covers(datetime(2026, 6, 30, 23, 59, tzinfo=UTC))
    assert not key.covers(datetime(2026, 7, 1, tzinfo=UTC))


@pytest.mark.parametrize("force", [False, True])
def test_nothing_new_nothing_signed(filled: Engine, force: bool) -> None:  # noqa: F811
    key = Ed25519PrivateKey.generate()
    assert sign_head(filled, key, NOW) is not None
    assert (sign_head(filled, key, NOW, force=force) is not None) is force


def test_an_edited_checkpoint_breaks_the_chain_of_checkpoints(filled: Engine) -> None:  # noqa: F811
    """Only the newest signature (and each key's last) is checked: the links make an
    edit of any earlier checkpoint visible all the same."""
    key = Ed25519PrivateKey.generate()
    for minutes in (0, 15, 30):
        sign_head(filled, key, NOW + timedelta(minutes=minutes), force=True)
    with filled.begin() as conn:
        conn.execute(
            update(audit_checkpoints_table)
            .where(audit_checkpoints_table.c.no == 1)
            .values(head_hash="f" * 64)
        )
    report = verify(filled, checkpoints=_policy(key), open_after=None)
    assert any("checkpoint 2" in str(p) and "altered" in str(p) for p in report.problems)
