"""The wire-vs-trail comparator (tests/rig/trail_check.py) on a real SQLite audit trail
written by the service's own AuditWriter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.safe_text import safe_text
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopProgress,
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from tests.rig.trail_check import (
    Expect,
    TrailCheck,
    assert_trail_matches_wire,
    same_number,
)
from tests.rig.wire import AgentLeg, CallerLeg

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
AGENT = "+33610000001"
S = CallState


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def caller(n: int, invite: float, end: float, *, answered: float | None = None) -> CallerLeg:
    """A caller who hung up at `end` (BYE if answered, else CANCEL)."""
    return CallerLeg(
        call_id=f"{n}-1@127.0.0.1",
        number=f"+3319900{n:04d}",
        display_name="C",
        from_header=f'"C" <sip:+3319900{n:04d}@127.0.0.1>',
        invite_at=at(invite),
        ringing_at=None,
        final_status=200 if answered is not None else 487,
        final_at=at(answered) if answered is not None else at(end),
        cancel_at=None if answered is not None else at(end),
        bye_at=at(end) if answered is not None else None,
        bye_by="caller" if answered is not None else None,
    )


def agent(n: int, answered: float, key: float | None) -> AgentLeg:
    return AgentLeg(
        call_id=f"a{n}",
        number=AGENT,
        caller_id="+33180000000",
        invite_at=at(answered - 1),
        ringing_at=at(answered - 0.5),
        answered_at=at(answered),
        final_status=200,
        ack_at=at(answered),
        dtmf_at=at(key) if key is not None else None,
        dtmf="1" if key is not None else None,
        cancel_at=None,
        bye_at=at(answered + 9),
        bye_by="pbx",
    )


def started(cid: str, number: str, start: float) -> list[AuditEvent]:
    return [
        CallStarted(cid, "+33180000001", "L", "after_hours", number, "C", "ch", at(start)),
        StateChanged(cid, 1, S.RECEIVED, S.ANNOUNCING, "after hours", at(start + 0.1)),
    ]


def accepted(cid: str, number: str, start: float, key: float, end: float) -> list[AuditEvent]:
    """Accepted with the key at `key`; the agent was dialled 2 s and answered 1 s before
    (as `agent()` legs are), whatever `key` says: a late key note is the service's."""
    hop, dial = f"{cid}-hop", round(key) - 2
    return [
        *started(cid, number, start),
        StateChanged(cid, 2, S.ANNOUNCING, S.DIALING, "announced", at(dial)),
        HopStarted(cid, hop, 1, "primary", "p1", "Agent One", AGENT, at(dial)),
        HopProgress(hop, "answered", at(dial + 1)),
        StateChanged(cid, 3, S.DIALING, S.AGENT_PROMPT, "agent answered", at(dial + 1)),
        HopProgress(hop, "accepted", at(key + 0.2)),
        HopEnded(hop, HopOutcome.ACCEPTED, at(key + 0.2), None, None, "1"),
        CallAnswered(cid, hop, "p1", at(key + 0.2)),
        StateChanged(cid, 4, S.AGENT_PROMPT, S.BRIDGED, "accepted", at(key + 0.2)),
        StateChanged(cid, 5, S.BRIDGED, S.ENDED, "caller hung up", at(end)),
        CallEnded(cid, CallOutcome.ACCEPTED, at(end), "accepted by p1 (hop 1)", end - key),
    ]


def abandoned(cid: str, number: str, start: float, end: float) -> list[AuditEvent]:
    return [
        *started(cid, number, start),
        StateChanged(cid, 2, S.ANNOUNCING, S.ENDED, "caller hung up", at(end)),
        CallEnded(cid, CallOutcome.ABANDONED, at(end), "abandoned at announcing"),
    ]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    yield engine
    engine.dispose()


def write(engine: Engine, *calls: list[AuditEvent]) -> None:
    writer = AuditWriter(engine)
    try:
        for events in calls:
            writer.write_events(events)
    finally:
        writer.close()


CALLERS = [
    caller(1, 0.0, 20.0, answered=0.05),
    caller(2, 0.5, 2.0),
    caller(3, 1.0, 21.0, answered=1.05),
]
AGENTS = [agent(1, 6.0, 7.0), agent(3, 8.0, 9.0)]
EXPECT = {
    CALLERS[0].number: Expect.accepted("p1"),
    CALLERS[1].number: Expect.abandoned("announcing"),
    CALLERS[2].number: Expect.accepted("p1"),
}


def test_a_trail_that_matches_the_wire_passes(engine: Engine) -> None:
    write(
        engine,
        abandoned("old", CALLERS[0].number, -3600, -3590),  # an hour earlier: outside the window
        accepted("c1", CALLERS[0].number, 0.3, 7.0, 20.4),
        abandoned("c2", CALLERS[1].number, 0.6, 2.2),
        accepted("c3", CALLERS[2].number, 1.2, 9.0, 21.0),
    )
    check = assert_trail_matches_wire(engine, CALLERS, EXPECT, agents=AGENTS, timeout=5)
    assert check.mismatches == []


def test_every_mismatch_is_reported_at_once(engine: Engine) -> None:
    legs = [*CALLERS, caller(4, 2.0, 5.0), caller(5, 3.0, 30.0, answered=3.1)]
    write(
        engine,
        # 1: answered 2 s after the agent's key, ended 2 s late
        accepted("c1", legs[0].number, 0.3, 9.0, 22.0),
        # 2: on record twice, and abandoned in the wrong state
        [
            *started("c2", legs[1].number, 0.6),
            StateChanged("c2", 2, S.ANNOUNCING, S.DIALING, "announced", at(1.5)),
            StateChanged("c2", 3, S.DIALING, S.ENDED, "caller hung up", at(2.0)),
            CallEnded("c2", CallOutcome.ABANDONED, at(2.0), "abandoned at dialing"),
        ],
        abandoned("c2-again", legs[1].number, 4.0, 4.5),
        # 3: missing; 4: still open; 5: wrong outcome and started 2 s late
        started("c4", legs[3].number, 2.1),
        abandoned("c5", legs[4].number, 5.0, 30.0),
        abandoned("stranger", "+33123456789", 10.0, 11.0),  # nobody placed it
    )
    expect = {**EXPECT, legs[3].number: Expect.abandoned(), legs[4].number: Expect.accepted()}
    agents = [agent(1, 6.0, 7.0), agent(3, 14.0, 15.0)]
    check = TrailCheck(engine, legs, expect, agents=agents)
    with pytest.raises(AssertionError) as failure:
        check.verify()
    text = str(failure.value)
    problems = {(m.number.split()[0], m.problem.split(" ")[0]) for m in check.mismatches}
    assert problems == {
        (legs[0].number, "ended_at"),
        (legs[0].number, "answered_at"),
        (legs[1].number, "appears"),
        (legs[1].number, "abandoned"),
        (legs[2].number, "missing"),
        (legs[3].number, "still"),
        (legs[4].number, "started_at"),
        (legs[4].number, "outcome"),
        ("+33123456789", "extra"),
        ("agent", "pressed"),  # the key press of call 3 (missing) explains no accepted call
    }
    assert text.startswith("10 mismatch(es) between the wire (5 calls placed)")
    assert "ended_at 22:00:22.000 is 2.00 s after the wire" in text
    assert "answered_at 22:00:09.200 is 2.20 s after the wire" in text
    assert "appears 2 times" in text and "abandoned in dialing, expected in announcing" in text
    assert "outcome abandoned, expected accepted" in text
    assert f"wire:  {legs[2].describe()}" in text  # each line says what the wire saw


def test_wait_settled_polls_until_every_call_has_ended(engine: Engine) -> None:
    write(engine, accepted("c1", CALLERS[0].number, 0.3, 7.0, 20.4))
    check = TrailCheck(engine, CALLERS[:2], EXPECT)
    assert not check.settled()
    assert check.wait_settled(timeout=0.6, quiet=0.1) is False
    write(engine, started("c2", CALLERS[1].number, 0.6))
    assert not check.settled()  # there, but still open
    write(engine, [CallEnded("c2", CallOutcome.ABANDONED, at(2.0), "abandoned at announcing")])
    assert check.wait_settled(timeout=5, quiet=0.2) is True


def test_numbers_match_as_the_trail_stores_them() -> None:
    assert same_number("+33199000001", safe_text("+33199000001"))
    # %FF%FE in the From URI, delivered as bytes FF FE: stored escaped as \xff\xfe
    assert same_number("%FF%FE", safe_text(b"\xff\xfe"))
    long = "+33" + "1" * 120
    assert same_number(long, safe_text(long[:79]))  # cut by Asterisk
    assert same_number(long, safe_text(long, limit=40))  # cut by safe_text ("…[+N]")
    assert not same_number("+33199000001", safe_text("+33199000002"))
    assert not same_number("+331990000011", safe_text("+33199000001"))


def test_expect_number_overrides_what_the_trail_should_show(engine: Engine) -> None:
    leg = caller(9, 0.0, 2.0)
    write(engine, abandoned("c9", "", 0.2, 2.1))  # an invalid caller ID arrived empty
    TrailCheck(engine, [leg], Expect(frozenset({"abandoned"}), number="")).verify()
    with pytest.raises(AssertionError, match="missing from the trail"):
        TrailCheck(engine, [leg], Expect.abandoned()).verify()
