"""Fault scenarios shared by the e2e tests (which assert) and bench/bench_reliability.py
(which prints the figures): each places real calls with the fault rig, applies one fault,
waits until the trail has settled and returns the comparison, not yet verified."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text

from tests.e2e.rig import LINE_EARLY, LINE_FULL, P1, E2ERig, ServiceProcess
from tests.rig.crowd import CallPlan, numbered
from tests.rig.faults import TcpProxy, crashed, freeze
from tests.rig.polling import wait_until
from tests.rig.trail_check import Expect, TrailCheck
from tests.rig.wire import CallerLeg


@dataclass
class FaultRun:
    check: TrailCheck
    figures: dict[str, float] = field(default_factory=dict)  # seconds, counts

    @property
    def placed(self) -> int:
        return len(self.check.callers)

    def recorded_right(self) -> int:
        """Calls on record exactly once with the true outcome and times (verify() first)."""
        wrong = {m.number for m in self.check.mismatches if not m.number.startswith("agent ")}
        return self.placed - len(wrong)


def _ended(count: int) -> Callable[[list[CallerLeg]], bool]:
    return lambda legs: sum(1 for leg in legs if leg.ended_at is not None) >= count


def unclaimed_records(service: ServiceProcess) -> float:
    """How many unclaimed-call records the dialplan wrote (imported or not): calls no
    service took. A call the service took must never leave one."""
    spool = service.config_path.parent / "spool"
    return float(sum(1 for _ in spool.rglob("*.unclaimed.json")))


def reached(service: ServiceProcess, caller: str, state: str) -> bool:
    """Whether the trail shows `caller`'s call in `state` (written to the database)."""
    assert service.engine is not None
    query = text(
        "SELECT 1 FROM calls c JOIN call_transitions t ON t.call_id = c.id"
        " WHERE c.caller_number = :caller AND t.to_state = :state"
    )
    with service.engine.connect() as conn:
        return conn.execute(query, {"caller": caller, "state": state}).first() is not None


def _settled(check: TrailCheck, timeout: float) -> TrailCheck:
    check.wait_settled(timeout)
    return check


def frozen(rig: E2ERig, service: ServiceProcess, early: int = 3) -> FaultRun:
    """SIGSTOP with the websocket open: `early` callers give up after 2 s, before the
    dialplan's 5 s watchdog; one more stays, the watchdog hands it to the fallback and
    the agent accepts there."""
    phone = rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
    leaving = [
        CallPlan(numbered(i, "+3319820"), hang_up_after_invite_ms=2000) for i in range(early)
    ]
    stays = CallPlan("+33198209999", hang_up_after_answer_ms=14000)
    assert service.process is not None
    with freeze(service.process.pid) as window:
        crowd = rig.callers(LINE_FULL, [*leaving, stays], rate=max(2.0, early / 2))
        crowd.wait_for_wire(_ended(early), timeout=20 + early, what="the early callers hung up")
        phone.wait_for_wire(lambda legs: bool(legs), timeout=20, what="fallback rings p1")
    try:
        crowd.finish(40)
    finally:
        assert phone.stop() == 0, phone.run.output()
    expect = {p.number: Expect.abandoned("received") for p in leaving}
    expect[stays.number] = Expect.accepted("p1")
    assert service.engine is not None
    check = TrailCheck(service.engine, crowd.wire(), expect, agents=phone.wire(), did=LINE_FULL)
    return FaultRun(_settled(check, 30), {"frozen_s": window.seconds or 0.0})


def killed_while_frozen(rig: E2ERig, service: ServiceProcess, leaving: int = 2) -> FaultRun:
    """SIGSTOP, `leaving` callers arrive and give up after 2 s (before the dialplan's
    5 s watchdog), then kill -9 while still frozen: their StasisStart sat unread in
    the dead process's socket, so no service ever saw them. The dialplan's own record
    of an unclaimed call must put each on record anyway, abandoned before being taken."""
    plans = [
        CallPlan(numbered(i, "+3319860"), hang_up_after_invite_ms=2000) for i in range(leaving)
    ]
    assert service.process is not None
    with freeze(service.process.pid) as window:
        crowd = rig.callers(LINE_FULL, plans, rate=max(2.0, leaving / 2))
        crowd.wait_for_wire(_ended(leaving), timeout=20, what="the callers hung up")
        with crashed(service):
            pass
    crowd.finish(20)
    expect = {p.number: Expect.abandoned("received") for p in plans}
    assert service.engine is not None
    check = TrailCheck(service.engine, crowd.wire(), expect, did=LINE_FULL)
    figures = {"frozen_s": window.seconds or 0.0}
    return FaultRun(_settled(check, 30), figures | {"unclaimed": unclaimed_records(service)})


def early_dial_fault(rig: E2ERig, service: ServiceProcess, fault: str) -> FaultRun:
    """Early dial: p1's phone rings during the announcement; the service is frozen
    (fault "frozen": SIGSTOP, websocket open) or killed (fault "killed": kill -9,
    restarted) and the caller gives up meanwhile. Afterwards the ringing leg must be
    cancelled before p1 answers (at 8 s), and the call be on record once, abandoned,
    with its true end."""
    phone = rig.agent_phone(P1, "accept", ring_ms=8000, dtmf_after_ms=800)
    leaving = CallPlan("+33198300001", hang_up_after_invite_ms=3000)
    crowd = rig.callers(LINE_EARLY, [leaving], rate=1)
    phone.wait_for_wire(lambda legs: bool(legs), timeout=10, what="early dial rings p1")
    assert service.process is not None
    down = freeze(service.process.pid) if fault == "frozen" else crashed(service)
    with down as window:
        crowd.wait_for_wire(_ended(1), timeout=15, what="the caller hung up")
    try:
        crowd.finish(30)
        phone.wait_for_wire(
            lambda legs: all(leg.final_status is not None for leg in legs),
            timeout=15,
            what="p1's ringing leg ended",
        )
    finally:
        assert phone.stop() == 0, phone.run.output()
    legs = phone.wire()
    assert service.engine is not None
    check = TrailCheck(
        service.engine,
        crowd.wire(),
        {leaving.number: Expect.abandoned()},
        agents=legs,
        did=LINE_EARLY,
    )
    figures = {"frozen_s": window.seconds or 0.0, "agent_legs": float(len(legs))}
    figures["agent_answered"] = float(sum(leg.answered_at is not None for leg in legs))
    figures["agent_cancelled"] = float(sum(leg.cancel_at is not None for leg in legs))
    return FaultRun(_settled(check, 30), figures)


def killed(rig: E2ERig, service: ServiceProcess) -> FaultRun:
    """kill -9 with two conversations and one caller in the announcement; during the
    downtime one talker and the waiting caller hang up and a new caller reaches the
    fallback; one conversation outlives the restart."""
    phone = rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
    talks = [
        CallPlan("+33198300001", hang_up_after_answer_ms=12000),  # leaves while down
        CallPlan("+33198300002", hang_up_after_answer_ms=24000),  # talks past the restart
    ]
    first = rig.callers(LINE_FULL, talks, rate=2)
    phone.wait_for_wire(
        lambda legs: sum(1 for leg in legs if leg.dtmf_at) >= 2, timeout=30, what="both bridged"
    )
    waiting = CallPlan("+33198300003", hang_up_after_invite_ms=3500)
    second = rig.callers(LINE_FULL, [waiting], rate=1)
    # In the announcement on record, not merely on the wire: killed before the service
    # read its arrival, the call would be an unclaimed one (killed_while_frozen).
    wait_until(
        lambda: reached(service, waiting.number, "announcing"),
        timeout=10,
        what="third caller in the announcement",
        every=0.05,
    )
    during = CallPlan("+33198300004", hang_up_after_answer_ms=12000)
    with crashed(service) as down:
        third = rig.callers(LINE_FULL, [during], rate=1)  # Stasis fails: the fallback
        first.wait_for_wire(_ended(1), timeout=20, what="a talker hung up while down")
        second.wait_for_wire(_ended(1), timeout=20, what="the waiting caller hung up")
    try:
        for crowd in (first, second, third):
            crowd.finish(60)
    finally:
        assert phone.stop() == 0, phone.run.output()
    legs = phone.wire()
    assert down.ended_at is not None
    released = [
        (leg.bye_at - down.ended_at).total_seconds()
        for leg in legs
        if leg.bye_by == "pbx" and leg.bye_at and leg.bye_at > down.began_at
    ]
    expect = {
        talks[0].number: Expect.accepted("p1"),
        talks[1].number: Expect.accepted("p1"),
        waiting.number: Expect.abandoned("announcing"),
        during.number: Expect.accepted("p1"),
    }
    callers = first.wire() + second.wire() + third.wire()
    assert service.engine is not None
    check = TrailCheck(service.engine, callers, expect, agents=legs, did=LINE_FULL)
    figures = {"down_s": down.seconds or 0.0}
    if released:
        figures["agent_alone_released_after_restart_s"] = min(released)
    return FaultRun(_settled(check, 40), figures)


def ari_cut(
    rig: E2ERig, proxy: TcpProxy, service: ServiceProcess, cut_s: float = 5.0, later: int = 2
) -> FaultRun:
    """ARI cut (TCP proxy) just as an agent answers: the agent's '1' during the cut is
    lost, the prompt is replayed and the second '1' accepts; `later` callers whose
    announcement ends during the cut are taken on when it ends."""
    phone = rig.agent_phone(
        P1, "accept", ring_ms=300, dtmf_after_ms=1500, press_again_after_ms=7000
    )
    first = rig.callers(LINE_FULL, [CallPlan("+33198400001", hang_up_after_answer_ms=30000)])
    invited = first.wait_for_wire(lambda legs: bool(legs), timeout=10, what="first in")[0].invite_at
    # Three seconds later: their announcement (6.7 s) ends inside the cut.
    wait_until(
        lambda: time.time() - invited.timestamp() > 3, timeout=10, what="3 s later", every=0.05
    )
    plans = [CallPlan(numbered(i, "+3319841"), hang_up_after_answer_ms=25000) for i in range(later)]
    second = rig.callers(LINE_FULL, plans, rate=max(2.0, later / 2))
    phone.wait_for_wire(
        lambda legs: any(leg.answered_at for leg in legs), timeout=20, what="first agent answered"
    )
    with proxy.outage() as outage:
        phone.wait_for_wire(
            lambda legs: any(leg.dtmf_at for leg in legs), timeout=10, what="key during the cut"
        )
        wait_until(
            lambda: time.monotonic() - outage.cut_mono >= cut_s, timeout=cut_s + 5, what="cut"
        )
    try:
        for crowd in (first, second):
            crowd.finish(60)
    finally:
        assert phone.stop() == 0, phone.run.output()
    legs = phone.wire()
    assert outage.restored_at is not None
    after = [
        (leg.invite_at - outage.restored_at).total_seconds()
        for leg in legs
        if leg.invite_at > outage.cut_at
    ]
    assert service.engine is not None
    check = TrailCheck(
        service.engine,
        first.wire() + second.wire(),
        Expect.accepted("p1"),
        agents=legs,
        did=LINE_FULL,
    )
    figures = {
        "cut_s": outage.seconds or 0.0,
        "key_lost_in_cut": float(
            bool(legs and legs[0].dtmf_at and legs[0].dtmf_at < outage.restored_at)
        ),
        "rung_after_cut": float(len(after)),
        "slowest_ring_after_restore_s": max(after, default=-1.0),
    }
    return FaultRun(_settled(check, 60), figures)


def burst(
    rig: E2ERig, service: ServiceProcess, calls: int = 300, rate: float = 10.0, early: float = 0.3
) -> FaultRun:
    """`calls` at `rate`/s, a fraction `early` of the callers giving up within 2 s."""
    phone = rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
    cut = round(early * 10)
    plans = [
        CallPlan(numbered(i, "+3319850"), hang_up_after_invite_ms=1000 + (i * 37) % 1000)
        if i % 10 < cut
        else CallPlan(numbered(i, "+3319850"), hang_up_after_answer_ms=11000)
        for i in range(calls)
    ]
    crowd = rig.callers(LINE_FULL, plans, rate=rate, timeout_s=int(calls / rate) + 120)
    try:
        crowd.finish(calls / rate + 120)
    finally:
        assert phone.stop(60) == 0, phone.run.output()
    expect = {
        p.number: Expect.abandoned() if p.hang_up_after_invite_ms else Expect.accepted("p1")
        for p in plans
    }
    assert service.engine is not None
    check = TrailCheck(service.engine, crowd.wire(), expect, agents=phone.wire(), did=LINE_FULL)
    agents = phone.wire()
    early_numbers = {p.number for p in plans if p.hang_up_after_invite_ms}
    rung_for_gone = sum(1 for leg in agents if leg.final_status != 200 and leg.cancel_at)
    figures = {
        "early_callers": float(len(early_numbers)),
        "agent_rings_cancelled": float(rung_for_gone),
    }
    run = FaultRun(_settled(check, 90), figures)
    run.figures["unclaimed"] = unclaimed_records(service)
    return run
