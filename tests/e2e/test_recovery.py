"""The service crashes or stops mid-call: no call is lost.

Asterisk keeps our channels in Stasis while the service is away; the next
process re-attaches bridged calls to their audit rows, gives a waiting
caller the next hop and hangs up stray agent legs. SIGTERM drains.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.e2e.rig import LINE_FULL, P1, P2, E2ERig, ServiceProcess, finish, now_utc

pytestmark = pytest.mark.e2e


def _wait_agent_ringing(rig: E2ERig, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for channel in rig.pbx.ari_get("/channels"):  # type: ignore[union-attr]
            if channel["id"].startswith("astreinte-agent-") and channel["state"] == "Ringing":
                return
        time.sleep(0.1)
    raise AssertionError("no agent leg ringing")


def test_bridged_call_survives_a_crash_and_is_reattached(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    since = now_utc()
    agent = e2e_rig.phone(P1, e2e_rig.agent("accept"))
    caller = e2e_rig.call(LINE_FULL, hold_ms=24000)
    e2e_rig.wait_for_bridge("astreinte-agent-")
    restartable.signal(signal.SIGKILL)  # crash while the two parties talk
    time.sleep(1.0)
    restartable.start()
    # The caller hangs up at the end: the agent gets a BYE only if the new
    # process re-attached the call and tore the other side down.
    finish(caller, agent)
    call = restartable.wait_for_call(since, LINE_FULL)
    assert call.outcome == "accepted", call.outcome_detail
    assert "re-attached" in (call.outcome_detail or "")
    assert any("re-attached" in t.reason for t in call.transitions)
    assert [(h.person_id, h.outcome) for h in call.hops] == [("p1", "accepted")]
    assert call.talk_seconds is not None and call.talk_seconds > 8
    assert call.hops[0].ended_at is not None


def test_waiting_caller_gets_next_hop_after_a_crash(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    since = now_utc()
    ringing = e2e_rig.phone(P1, e2e_rig.agent("noanswer"))
    second = e2e_rig.phone(P2, e2e_rig.agent("accept"))
    caller = e2e_rig.call(LINE_FULL, hold_ms=26000)
    _wait_agent_ringing(e2e_rig)
    restartable.signal(signal.SIGKILL)  # crash while the first agent's phone rings
    restartable.start()
    finish(caller, ringing, second)  # first phone: CANCEL; second: answers, presses 1
    call = restartable.wait_for_call(since, LINE_FULL)
    assert call.outcome == "accepted", call.outcome_detail
    assert [(h.person_id, h.outcome) for h in call.hops] == [
        ("p1", "failed"),
        ("p2", "accepted"),
    ]
    assert "restart" in (call.hops[0].cause_text or "")
    assert any("resumed after a service restart" in t.reason for t in call.transitions)


def test_sigterm_lets_the_bridged_call_finish(e2e_rig: E2ERig, restartable: ServiceProcess) -> None:
    since = now_utc()
    agent = e2e_rig.phone(P1, e2e_rig.agent("accept"))
    caller = e2e_rig.call(LINE_FULL, hold_ms=18000)
    e2e_rig.wait_for_bridge("astreinte-agent-")
    restartable.signal(signal.SIGTERM)
    time.sleep(2.0)
    assert restartable.process is not None and restartable.process.poll() is None, (
        "the service must wait for the call in progress"
    )
    finish(caller, agent)
    assert restartable.process.wait(15) == 0
    restartable.process = None
    engine_proc = ServiceProcess(
        restartable.config_path, restartable.db_url, restartable.recordings, restartable.log_path
    )
    engine_proc.start()  # reopen the trail (and prove a clean restart)
    try:
        call = engine_proc.wait_for_call(since, LINE_FULL)
    finally:
        engine_proc.stop()
    assert call.outcome == "accepted", call.outcome_detail
    assert "ended by caller" in (call.outcome_detail or "")
