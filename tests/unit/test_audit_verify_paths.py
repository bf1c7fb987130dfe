"""`audit verify` checks the chain in a forked child while it replays the domain rows
(issue 18: 1M records under 10 s): that way and the one-pass way must find exactly
the same things, and a child that fails must change nothing but the time taken.
A process with other threads never forks (their locks would stay held in the child)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from astreinte_ari.adapters.store import audit_verify
from astreinte_ari.adapters.store.audit_checkpoints import sign_head
from astreinte_ari.adapters.store.audit_log import append_audit_record
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.migrate import create_db_engine
from tests.unit.test_audit_checkpoints import NOW, _policy, _rehash_everything
from tests.unit.test_audit_log import CALL_ID, _sql, engine, filled  # noqa: F401

HOP = f"{CALL_ID[:8]}-hop-1"
TAMPERINGS = [
    None,
    "UPDATE audit_log SET payload = replace(payload, 'accepted', 'no_one') WHERE seq = 18",
    "DELETE FROM audit_log WHERE seq = 5",
    "UPDATE audit_log SET prev_hash = hash WHERE seq = 7",
    "UPDATE audit_log_head SET seq = seq - 1",
    "UPDATE hops SET outcome = 'accepted' WHERE id = :hop",
    "DELETE FROM call_transitions WHERE call_id = :call AND seq = 2",
    # the transitions are compared in the child (whole database): each kind of finding
    "UPDATE call_transitions SET reason = 'x', to_state = 'y' WHERE call_id = :call AND seq = 3",
    "INSERT INTO call_transitions (call_id, seq, from_state, to_state, reason, at) "
    "SELECT call_id, 99, from_state, to_state, reason, at FROM call_transitions "
    "WHERE call_id = :call AND seq = 1",
    "UPDATE call_transitions SET seq = 98 WHERE call_id = :call AND seq = 4",
    "UPDATE calls SET caller_name = 'x' WHERE id = :call",
]


@pytest.fixture(autouse=True)
def fork_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest may have threads of its own here; these tests fork on purpose (the
    child does nothing but read the database)."""
    monkeypatch.setattr(audit_verify, "only_thread", lambda: True)


@pytest.fixture
def another_thread() -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join()


def test_a_process_with_another_thread_does_not_fork(
    monkeypatch: pytest.MonkeyPatch,
    another_thread: threading.Thread,
    filled: Engine,  # noqa: F811
) -> None:
    monkeypatch.undo()  # the real check, over /proc/self/task
    assert audit_verify.only_thread() is False
    assert audit_verify._ChainChild.start(filled, _whole_job()) is None
    assert verify(filled).ok  # one pass instead


def _whole_job() -> Any:
    """The child's job for a whole-database verify (transitions compared there too)."""
    return (None, None, None, datetime.now(UTC), True)


def _findings(report: Any) -> dict[str, Any]:
    found = dataclasses.asdict(report)
    found["problems"] = [str(p) for p in report.problems]
    return found


@pytest.mark.parametrize("statement", TAMPERINGS)
def test_the_chain_in_a_child_finds_what_one_pass_finds(
    filled: Engine,  # noqa: F811
    statement: str | None,
) -> None:
    if statement is not None:
        _sql(filled, statement, call=CALL_ID, hop=HOP)
    one_pass = verify(filled, second_process=False)
    with_child = verify(filled, second_process=True)
    assert _findings(with_child) == _findings(one_pass)
    assert one_pass.ok is (statement is None), one_pass.problems


def test_many_findings_keep_the_chain_first_and_the_full_count(filled: Engine) -> None:  # noqa: F811
    _sql(filled, "UPDATE audit_log SET payload = payload || ' '")  # every record edited
    _sql(filled, "UPDATE hops SET label = 'x'")  # and every hop and transition
    _sql(filled, "UPDATE call_transitions SET reason = 'x'")
    one_pass = verify(filled, second_process=False)
    assert one_pass.problem_count > len(one_pass.problems)  # beyond the kept 50
    assert _findings(verify(filled, second_process=True)) == _findings(one_pass)


def test_a_file_or_server_database_gets_a_child(filled: Engine) -> None:  # noqa: F811
    child = audit_verify._ChainChild.start(filled, _whole_job())
    assert child is not None
    try:
        with filled.connect() as conn:
            chain, _, transitions = child.reports(conn)
            assert chain.records == 36
            assert transitions == (10, [])  # compared there: 2 calls x 5, all as logged
    finally:
        child.close()


def test_an_in_memory_database_is_checked_in_one_pass() -> None:
    memory = create_db_engine("sqlite://")
    try:
        assert audit_verify._ChainChild.start(memory, _whole_job()) is None
    finally:
        memory.dispose()


def test_a_failing_child_changes_nothing(
    filled: Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with filled.begin() as conn:
        append_audit_record(conn, "alert.sent", "alert-1", {"to": "alice"})
    _sql(filled, "DELETE FROM audit_log WHERE seq = 5")
    expected = _findings(verify(filled, second_process=False))

    ran = tmp_path / "child-ran"

    def dies(*_: object) -> None:
        ran.touch()
        raise SystemExit(3)  # as a child killed before it could answer

    monkeypatch.setattr(audit_verify, "_chain_child", dies)
    assert _findings(verify(filled)) == expected
    assert ran.exists()  # the child did start, and fail


def test_checkpoint_findings_come_last_either_way(filled: Engine) -> None:  # noqa: F811
    """The re-hash attack (caught by the checkpoint, checked in the child) plus a
    deleted transition and calls never ended (the parent's): same order both ways."""
    key = Ed25519PrivateKey.generate()
    assert sign_head(filled, key, NOW) is not None
    _rehash_everything(filled)
    _sql(filled, "DELETE FROM call_transitions WHERE call_id = :call AND seq = 2", call=CALL_ID)
    _sql(filled, "UPDATE calls SET ended_at = NULL")
    _sql(filled, "UPDATE audit_log SET prev_hash = hash WHERE seq = 3")
    policy, at = _policy(key), NOW + timedelta(days=1)
    one_pass = verify(filled, checkpoints=policy, now=at, second_process=False)
    assert _findings(verify(filled, checkpoints=policy, now=at)) == _findings(one_pass)
    order = [p.where.split()[0] for p in one_pass.problems]
    assert order[0] == "audit_log" and order[-1] == "checkpoint"
    assert {"calls", "call_transitions"} <= set(order)
    assert one_pass.checkpoints == 1 and one_pass.open_calls == 2
