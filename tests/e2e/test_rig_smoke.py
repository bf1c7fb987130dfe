"""Smoke tests of the fault rig (tests/rig) against today's service: many callers from
one sipp, one agent phone for all of them, the wire compared with the audit trail;
the TCP proxy between the service and ARI, cut and restored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.rig import LINE_FULL, P1, E2ERig, ServiceProcess, sqlite_service
from tests.rig.crowd import CallPlan, numbered
from tests.rig.faults import TcpProxy
from tests.rig.trail_check import Expect, assert_trail_matches_wire

pytestmark = pytest.mark.e2e


@pytest.fixture
def service(e2e_rig: E2ERig, tmp_path: Path) -> Iterator[ServiceProcess]:
    with sqlite_service(e2e_rig, tmp_path) as proc:
        yield proc


def test_six_callers_half_leaving_early_match_the_trail(
    e2e_rig: E2ERig, service: ServiceProcess
) -> None:
    phone = e2e_rig.agent_phone(P1, "accept", ring_ms=500, dtmf_after_ms=1000)
    # Odd callers give up 1.5 s after dialling (during the announcement, long before an
    # agent could answer); even ones talk until 12 s after the answer.
    plans = [
        CallPlan(numbered(i, "+3319800"), hang_up_after_invite_ms=1500)
        if i % 2
        else CallPlan(numbered(i, "+3319800"), hang_up_after_answer_ms=12000)
        for i in range(6)
    ]
    crowd = e2e_rig.callers(LINE_FULL, plans, rate=2)
    try:
        crowd.finish(60)
    finally:
        assert phone.stop() == 0, phone.run.output()
    expect = {
        p.number: Expect.abandoned() if p.hang_up_after_invite_ms else Expect.accepted("p1")
        for p in plans
    }
    assert service.engine is not None
    callers = crowd.wire()
    assert len(callers) == 6 and all(leg.ended_by == "caller" for leg in callers)
    assert_trail_matches_wire(
        service.engine, callers, expect, agents=phone.wire(), did=LINE_FULL, timeout=30
    )


def test_callers_leaving_during_the_announcement_are_abandoned_there_and_ring_nobody(
    e2e_rig: E2ERig, service: ServiceProcess
) -> None:
    phone = e2e_rig.agent_phone(P1, "accept", ring_ms=500, dtmf_after_ms=1000)
    plans = [CallPlan(numbered(i, "+3319810"), hang_up_after_invite_ms=1500) for i in range(3)]
    crowd = e2e_rig.callers(LINE_FULL, plans, rate=2)
    try:
        crowd.finish(30)
    finally:
        assert phone.stop() == 0, phone.run.output()
    assert service.engine is not None
    assert_trail_matches_wire(
        service.engine, crowd.wire(), Expect.abandoned("announcing"), did=LINE_FULL, timeout=20
    )
    assert phone.wire() == [], "an agent was rung for a caller who had left"


def _wait_log(service: ServiceProcess, text: str, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while service.log_path.read_text(errors="replace").count(text) < count:
        assert time.monotonic() < deadline, f"no {count}x {text!r} in:\n{service.log_tail()}"
        time.sleep(0.1)


def test_proxy_is_transparent_to_ari_and_its_cut_makes_the_service_reconnect(
    e2e_rig: E2ERig, proxy: TcpProxy, proxied: ServiceProcess
) -> None:
    connected = "ARI websocket connected to " + proxy.url
    _wait_log(proxied, connected, 1)  # REST and the event websocket went through
    with proxy.outage() as outage:
        assert outage.closed >= 1  # at least the websocket was open
        _wait_log(proxied, "ARI websocket disconnected", 1)
        while time.monotonic() - outage.cut_mono < 2.0:  # hold the cut 2 s in all
            time.sleep(0.05)
    _wait_log(proxied, connected, 2)
    assert outage.refused >= 1, "the service should have retried during the cut"
    # A whole call through the proxy after the cut: events in, commands out.
    phone = e2e_rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
    crowd = e2e_rig.callers(LINE_FULL, [CallPlan("+33197000001", hang_up_after_answer_ms=10000)])
    try:
        crowd.finish(40)
    finally:
        assert phone.stop() == 0, phone.run.output()
    assert proxied.engine is not None
    assert_trail_matches_wire(
        proxied.engine,
        crowd.wire(),
        Expect.accepted("p1"),
        agents=phone.wire(),
        did=LINE_FULL,
        timeout=20,
    )
