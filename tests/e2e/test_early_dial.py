"""Early dial and barge-in on a real Asterisk: the agent's phone rings while the
caller hears the announcement, and a "1" pressed during the prompt counts at once.

Times are the service's audit trail (started_at: the caller's channel created by
Asterisk, i.e. its INVITE; hop started/ringing/accepted; answered_at: bridged).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from astreinte_ari.adapters.store.queries import CallDetail
from astreinte_ari.devtools.localpbx import SOUNDS_DIR
from tests.e2e.rig import (
    LINE_EARLY,
    LINE_EARLY_CUT,
    LINE_SHORT,
    P1,
    E2ERig,
    ServiceProcess,
    finish,
    now_utc,
)

pytestmark = pytest.mark.e2e


def _length_s(sound: str) -> float:
    """A prompt's length (8 kHz 16-bit mono WAV)."""
    return ((SOUNDS_DIR / "fr" / f"{sound}.wav").stat().st_size - 44) / 16000


ANNOUNCEMENT_S = _length_s("astreinte-after-hours")  # ~6.7 s
PROMPT_S = _length_s("astreinte-press-1")  # ~3.4 s


def _since(call: CallDetail, at: datetime | None) -> float:
    assert at is not None
    return (at - call.started_at).total_seconds()


def _states(call: CallDetail) -> list[str]:
    return [t.to_state for t in call.transitions]


def _accepts_during_the_announcement(rig: E2ERig, service: ServiceProcess, did: str) -> CallDetail:
    since = now_utc()
    # Answers 0.3 s after its INVITE, presses 1 0.5 s later: during the announcement.
    agent = rig.phone(P1, rig.agent("accept", ring_ms=300, dtmf_after_ms=500))
    caller = rig.call(did, hold_ms=int(ANNOUNCEMENT_S * 1000) + 5000)
    rig.wait_for_bridge("astreinte-agent-", timeout=20)
    finish(caller, agent)
    call = service.wait_for_call(since, did)
    assert call.outcome == "accepted", call.outcome_detail
    hop = call.hops[0]
    # The agent's phone rang (180) well before the announcement's length had elapsed.
    assert _since(call, hop.ringing_at) < ANNOUNCEMENT_S - 3.0, call.hops
    assert _since(call, hop.accepted_at) < ANNOUNCEMENT_S - 2.0, call.hops
    return call


def test_full_announcement_agent_accepts_during_it_waits_for_its_end(
    rig: E2ERig, service: ServiceProcess
) -> None:
    call = _accepts_during_the_announcement(rig, service, LINE_EARLY)
    assert _states(call) == [
        "announcing", "dialing", "agent_prompt", "agent_waiting", "bridged", "ended",
    ]  # fmt: skip
    bridged = _since(call, call.answered_at)
    # Only once the caller had heard it all, and at once then.
    assert ANNOUNCEMENT_S <= bridged < ANNOUNCEMENT_S + 1.0, bridged


def test_until_accepted_agent_accepts_during_it_is_bridged_at_once(
    rig: E2ERig, service: ServiceProcess
) -> None:
    call = _accepts_during_the_announcement(rig, service, LINE_EARLY_CUT)
    assert _states(call) == ["announcing", "dialing", "agent_prompt", "bridged", "ended"]
    accept_to_bridge = (call.answered_at - call.hops[0].accepted_at).total_seconds()  # type: ignore[operator]
    assert accept_to_bridge < 0.5, accept_to_bridge
    assert _since(call, call.answered_at) < ANNOUNCEMENT_S - 2.0


def test_caller_leaves_during_the_announcement_the_ringing_agent_is_cancelled(
    rig: E2ERig, service: ServiceProcess
) -> None:
    since = now_utc()
    ringing = rig.phone(P1, rig.agent("noanswer"))
    caller = rig.call(LINE_EARLY, hold_ms=3000)  # mid-announcement
    finish(caller, ringing)  # the phone got its CANCEL (the scenario waits for it)
    call = service.wait_for_call(since, LINE_EARLY)
    assert call.outcome == "abandoned", call.outcome_detail
    assert "during the announcement" in (call.outcome_detail or ""), call.outcome_detail
    [hop] = call.hops
    assert (hop.outcome, hop.cause_text) == ("cancelled", "caller hung up during the announcement")
    assert hop.ringing_at is not None and _since(call, hop.ringing_at) < 3.0
    assert 2.5 < _since(call, hop.ended_at) < 4.0, hop  # cancelled with the caller's BYE


def test_barge_in_a_key_at_the_start_of_the_prompt_counts_at_once(
    rig: E2ERig, service: ServiceProcess
) -> None:
    since = now_utc()
    agent = rig.phone(P1, rig.agent("accept", ring_ms=300, dtmf_after_ms=300))
    caller = rig.call(LINE_SHORT, hold_ms=int(ANNOUNCEMENT_S * 1000) + 6000)
    rig.wait_for_bridge("astreinte-agent-", timeout=20)
    finish(caller, agent)
    call = service.wait_for_call(since, LINE_SHORT)
    assert call.outcome == "accepted", call.outcome_detail
    hop = call.hops[0]
    key_after_answer = (hop.accepted_at - hop.answered_at).total_seconds()  # type: ignore[operator]
    assert key_after_answer < PROMPT_S - 2.0, key_after_answer  # not after the prompt
    accept_to_bridge = (call.answered_at - hop.accepted_at).total_seconds()  # type: ignore[operator]
    assert accept_to_bridge < 0.5, accept_to_bridge
