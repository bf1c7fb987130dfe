"""Benchmark: `report` over N calls and `audit verify` (chain) over M records.

Run by hand (targets: report < 5 s over 1 million calls, verify < 10 s over
1 million records, on a 2-core machine):

    .venv/bin/python bench/bench_reports.py                      # 1M calls, 1M records
    .venv/bin/python bench/bench_reports.py --calls 2000 --records 5000   # smoke

Both backends: SQLite in a temp file, PostgreSQL on a private server
(tests/rig/postgres.py). Seeding goes straight to the tables (bulk inserts),
not through the writer: it measures the read side only.

    .venv/bin/python bench/bench_reports.py --full-verify-calls 55556

times `audit verify` as auditors run it (chain + domain cross-check) over 1 M
records written by the real AuditWriter (seeding: about 10 minutes on SQLite,
30 on PostgreSQL). To time it again over a database filled once:

    .venv/bin/python bench/bench_reports.py --existing-db postgresql+psycopg://...

On a loaded machine the writer takes over an hour for those 1M records;
`--fast-seed` writes 3 calls through it and bulk-inserts checked copies of them
(about 5 minutes), e.g. the database of docs/audit-and-reports.md's issue-18 figures:

    .venv/bin/python bench/bench_reports.py --full-verify-calls 55556 --backend sqlite \
        --checkpoints 35040 --fast-seed --keep-db /tmp/bench18
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, insert, select, update

from astreinte_ari.adapters.store.audit_checkpoints import (
    Checkpoint,
    PublicKey,
    audit_checkpoints_table,
    key_id,
    link,
)
from astreinte_ari.adapters.store.audit_checkpoints_verify import CheckpointPolicy
from astreinte_ari.adapters.store.audit_log import (
    GENESIS_HASH,
    audit_log_head_table,
    audit_log_table,
    canonical_json,
    iso,
    record_hash,
)
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.models import calls_table, hops_table
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import AuditEvent
from astreinte_ari.reports.kpis import build_report

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 365
OUTCOMES = ["accepted"] * 6 + ["voicemail", "abandoned", "no_one", "voicemail_empty"]
HOP_OUTCOMES = ["busy", "no_answer", "declined", "not_accepted"]
CHUNK = 20_000


def _calls(n: int, rng: random.Random) -> Iterator[tuple[list[dict], list[dict]]]:
    calls: list[dict] = []
    hops: list[dict] = []
    for i in range(n):
        start = START + timedelta(seconds=rng.uniform(0, DAYS * 86400))
        outcome = rng.choice(OUTCOMES)
        answered = start + timedelta(seconds=rng.uniform(5, 90)) if outcome == "accepted" else None
        call_id = f"b{i:09d}"
        calls.append({
            "id": call_id, "did": "+33180000000", "line_name": "L", "period": "night",
            "caller_number": "+336", "caller_name": "", "channel_id": "c", "started_at": start,
            "answered_at": answered, "ended_at": start + timedelta(seconds=200),
            "outcome": outcome, "talk_seconds": rng.uniform(10, 600) if answered else None,
        })  # fmt: skip
        n_hops = rng.randint(1, 3)
        for seq in range(1, n_hops + 1):
            last = seq == n_hops and answered is not None
            hops.append({
                "id": f"{call_id}-{seq}", "call_id": call_id, "seq": seq, "label": "r",
                "person_id": f"p{rng.randint(1, 12)}", "person_name": "P", "number": "+336",
                "started_at": start, "outcome": "accepted" if last else rng.choice(HOP_OUTCOMES),
            })  # fmt: skip
        if len(calls) >= CHUNK:
            yield calls, hops
            calls, hops = [], []
    if calls:
        yield calls, hops


def seed(engine: Engine, n_calls: int, n_records: int) -> None:
    rng = random.Random(1)
    with engine.begin() as conn:
        for calls, hops in _calls(n_calls, rng):
            conn.execute(insert(calls_table), calls)
            conn.execute(insert(hops_table), hops)
    prev = GENESIS_HASH
    seq = 0
    with engine.begin() as conn:
        while seq < n_records:
            rows = []
            for _ in range(min(CHUNK, n_records - seq)):
                seq += 1
                at = datetime.fromisoformat(str(iso(START + timedelta(seconds=seq))))
                payload = canonical_json({"n": seq, "outcome": rng.choice(OUTCOMES)})
                digest = record_hash(seq, at, "bench.record", f"s{seq}", payload, prev)
                rows.append({"seq": seq, "at": at, "kind": "bench.record",
                             "subject_id": f"s{seq}", "payload": payload,
                             "prev_hash": prev, "hash": digest})  # fmt: skip
                prev = digest
            conn.execute(insert(audit_log_table), rows)
        conn.execute(
            update(audit_log_head_table)
            .where(audit_log_head_table.c.id == 1)
            .values(seq=seq, hash=prev)
        )


def measure(name: str, url: str, n_calls: int, n_records: int) -> None:
    upgrade(url)
    engine = create_db_engine(url)
    try:
        t0 = time.perf_counter()
        seed(engine, n_calls, n_records)
        if engine.dialect.name == "postgresql":
            # What autovacuum does minutes after a bulk load in production: statistics,
            # and the visibility map that lets the covering indexes answer alone.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        seeded = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = build_report(engine, START, START + timedelta(days=DAYS), timezone="Europe/Paris")
        report_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = verify(engine, check_domain=False)
        verify_s = time.perf_counter() - t0
        signed = ""
        if CHECKPOINTS:
            policy = add_checkpoints(engine, n_records, CHECKPOINTS)
            t0 = time.perf_counter()
            with_checkpoints = verify(engine, check_domain=False, checkpoints=policy)
            signed_s = time.perf_counter() - t0
            assert with_checkpoints.ok and with_checkpoints.checkpoints == CHECKPOINTS
            signed = f" | with {CHECKPOINTS:,} signed checkpoints: {signed_s:6.2f} s"
    finally:
        engine.dispose()
    assert report.total == n_calls and result.ok and result.records == n_records
    print(f"{name:10s} seed {seeded:7.1f} s | report over {n_calls:,} calls: {report_s:6.2f} s "
          f"(target < 5) | audit verify over {n_records:,} records: {verify_s:6.2f} s "
          f"(target < 10){signed}", flush=True)  # fmt: skip


CHECKPOINTS = 0  # set by --checkpoints
FAST_SEED = False  # set by --fast-seed
ONE_PROCESS = False  # set by --one-process


KEEP_DIR: Path | None = None  # set by --keep-db


def add_checkpoints(engine: Engine, n_records: int, count: int) -> CheckpointPolicy:
    """`count` checkpoints spread over the chain, as a service signing every 15 min
    would have left (35,040 a year), signed with a fresh Ed25519 key (its public
    half kept beside a kept database, for --existing-db --checkpoint-key)."""
    from dataclasses import asdict

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    if KEEP_DIR is not None:
        (KEEP_DIR / "checkpoints-pub.pem").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    kid = key_id(key.public_key())
    step = max(1, n_records // count)
    with engine.begin() as conn:
        hashes = dict(
            conn.execute(
                select(audit_log_table.c.seq, audit_log_table.c.hash).where(
                    audit_log_table.c.seq % step == 0
                )
            ).all()
        )
        prev, rows = GENESIS_HASH, []
        for no in range(1, count + 1):
            seq = min(no * step, n_records)
            at = START + timedelta(seconds=seq)
            unsigned = Checkpoint(no, seq, hashes[seq], str(iso(at)), kid, prev, "")
            signature = key.sign(unsigned.signed_bytes()).hex()
            rows.append({**asdict(unsigned), "at": at, "signature": signature})
            prev = link(Checkpoint(**{**asdict(unsigned), "signature": signature}))
        conn.execute(insert(audit_checkpoints_table), rows)
    return CheckpointPolicy(keys=[PublicKey(key.public_key())], max_uncovered=None)


def measure_full_verify(name: str, url: str, n_calls: int) -> None:
    """`audit verify` as an auditor runs it (chain + domain cross-check) over calls
    written by the real AuditWriter: 18 records per call (3 hops, 5 transitions)."""
    from tests.unit.test_store import three_hop_call

    upgrade(url)
    engine = create_db_engine(url)
    writer = AuditWriter(engine)
    try:
        t0 = time.perf_counter()
        batch: list[AuditEvent] = []
        if FAST_SEED:
            from bench.audit_seed import seed_by_template

            seed_by_template(engine, n_calls, START, three_hop_call)
        for i in range(0 if FAST_SEED else n_calls):
            batch += three_hop_call(str(uuid.uuid4()), START + timedelta(minutes=i))
            if len(batch) >= 9000 or i == n_calls - 1:
                writer.write_events(batch)
                batch = []
            if i % 5000 == 4999:
                print(f"  {name}: {i + 1:,} calls written", file=sys.stderr, flush=True)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        seeded = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = verify(engine)
        verify_s = time.perf_counter() - t0
        signed = ""
        if CHECKPOINTS:  # the same full verify, the chain also checked against signatures
            policy = add_checkpoints(engine, result.records, CHECKPOINTS)
            t0 = time.perf_counter()
            with_checkpoints = verify(engine, checkpoints=policy)
            signed_s = time.perf_counter() - t0
            assert with_checkpoints.ok and with_checkpoints.checkpoints == CHECKPOINTS
            signed = f" | with {CHECKPOINTS:,} signed checkpoints: {signed_s:6.2f} s"
    finally:
        writer.close()
        engine.dispose()
    assert result.ok and result.calls == n_calls
    print(f"{name:10s} seed {seeded:7.1f} s | full audit verify (chain + domain) over "
          f"{result.records:,} records ({n_calls:,} calls): {verify_s:6.2f} s (target < 10)"
          f"{signed}", flush=True)  # fmt: skip


def _cpu_seconds() -> tuple[float, float]:
    """User + system CPU seconds of this process, and of its children reaped so far."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def measure_existing(url: str, rounds: int, checkpoint_key: Path | None) -> None:
    """Full `audit verify` over a database already filled (a copy of a real one, or
    one seeded once through the writer: --keep-db), so a change can be timed again
    without the seeding (10 min on SQLite, half an hour on PostgreSQL)."""
    policy = None
    if checkpoint_key is not None:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        public = load_pem_public_key(checkpoint_key.read_bytes())
        policy = CheckpointPolicy(keys=[PublicKey(public)], max_uncovered=None)  # type: ignore[arg-type]
    engine = create_db_engine(url)
    try:
        for _ in range(rounds):
            cpu0 = _cpu_seconds()
            t0 = time.perf_counter()
            result = verify(engine, checkpoints=policy, second_process=not ONE_PROCESS)
            verify_s = time.perf_counter() - t0
            cpu = [after - before for after, before in zip(_cpu_seconds(), cpu0, strict=True)]
            assert result.ok, result
            signed = f", {result.checkpoints:,} signed checkpoints" if policy else ""
            how = ", one process" if ONE_PROCESS else ""
            # The 1-minute load average: on a shared 2-core machine it explains the spread,
            # and CPU time (this process; the chain's child) is the steadier figure.
            print(f"{engine.dialect.name:10s} full audit verify (chain + domain{signed}{how}) "
                  f"over {result.records:,} records ({result.calls:,} calls): {verify_s:6.2f} s "
                  f"(target < 10) | load {os.getloadavg()[0]:.1f} | CPU {cpu[0]:.2f} s + child "
                  f"{cpu[1]:.2f} s", flush=True)  # fmt: skip
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--full-verify-calls",
        type=int,
        default=0,
        metavar="N",
        help="instead: full `audit verify` over N calls written by the real writer "
        "(55556 calls = 1M records; ~10 min of seeding per backend)",
    )
    parser.add_argument(
        "--existing-db",
        metavar="URL",
        help="instead: time the full `audit verify` over this already filled database",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --existing-db")
    parser.add_argument(
        "--checkpoint-key",
        type=Path,
        metavar="PEM",
        help="with --existing-db: also check the signed checkpoints (the public key "
        "--keep-db wrote)",
    )
    parser.add_argument(
        "--keep-db",
        type=Path,
        metavar="DIR",
        help="with --full-verify-calls --backend sqlite: seed DIR/bench.db and keep it "
        "(and the checkpoints' public key), to re-time it later with --existing-db",
    )
    parser.add_argument(
        "--checkpoints",
        type=int,
        default=0,
        metavar="N",
        help="also time the chain check with N signed checkpoints (35040 = a year at 15 min)",
    )
    parser.add_argument(
        "--fast-seed",
        action="store_true",
        help="with --full-verify-calls: the writer writes 3 calls, the rest are checked "
        "copies of them, bulk-inserted (minutes instead of an hour on a loaded machine)",
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="with --existing-db: verify without the child process that checks the chain",
    )
    args = parser.parse_args()
    global CHECKPOINTS, KEEP_DIR, FAST_SEED, ONE_PROCESS
    CHECKPOINTS, FAST_SEED, ONE_PROCESS = args.checkpoints, args.fast_seed, args.one_process
    if args.existing_db:
        measure_existing(args.existing_db, args.rounds, args.checkpoint_key)
        return 0
    if args.keep_db is not None:
        if not args.full_verify_calls or args.backend != "sqlite":
            parser.error("--keep-db goes with --full-verify-calls N --backend sqlite")
        args.keep_db.mkdir(parents=True, exist_ok=True)
        if (args.keep_db / "bench.db").exists():
            parser.error(f"{args.keep_db / 'bench.db'} exists: time it with --existing-db")
        KEEP_DIR = args.keep_db
        measure_full_verify("sqlite", f"sqlite:///{args.keep_db}/bench.db", args.full_verify_calls)
        print(
            f"kept: --existing-db sqlite:///{args.keep_db}/bench.db"
            + (f" --checkpoint-key {args.keep_db}/checkpoints-pub.pem" if CHECKPOINTS else "")
        )
        return 0
    run = measure
    if args.full_verify_calls:

        def run(name: str, url: str, *_: int) -> None:
            measure_full_verify(name, url, args.full_verify_calls)

    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        if args.backend in ("sqlite", "both"):
            run("sqlite", f"sqlite:///{tmp}/bench.db", args.calls, args.records)
        if args.backend in ("postgresql", "both"):
            from tests.rig.postgres import running_postgres

            with running_postgres(Path(tmp) / "pg") as url:
                run("postgresql", url, args.calls, args.records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
