"""A new call is on record before anything can fail, and ends once with its truth.

Table-driven over a scripted PBX (tests/unit/callflow_fakes.py): what the PBX
answers when the service takes the call, callers who leave at each early
moment, the draining hand-over, and the resync after a gap in the events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from astreinte_ari.callflow.audit_events import CallStarted, HopEnded
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.callflow.reconcile import ChannelHistory
from astreinte_ari.callflow.telephony import (
    Channel,
    ChannelEntered,
    ChannelHungUp,
    ChannelLeft,
    DtmfReceived,
    HangupRequested,
    PlaybackFinished,
    Resynced,
    TakeResult,
)
from tests.unit.callflow_fakes import (
    T0,
    FakePbx,
    arrive,
    caller,
    feed,
    hop,
    make_service,
    plan,
    settle,
)

LEFT_AT = T0 + timedelta(seconds=2)


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def originated(pbx: FakePbx) -> list[dict[str, Any]]:
    return [dict(args) for args in pbx.did("originate")]


async def test_the_call_is_on_record_before_the_pbx_is_asked_anything() -> None:
    pbx = FakePbx(take=TakeResult.ELSEWHERE)
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678")))
    chan = caller()
    await arrive(service, chan)
    # Synchronous: recorded while handling the event, before the flow's first request.
    assert [type(e) for e in trail.events] == [CallStarted]
    started = trail.events[0]
    assert started.call_id == call_id_for_channel(chan.id)
    assert started.at == chan.created_at  # the PBX's arrival time, not when we read it
    await settle(service)


@pytest.mark.parametrize(
    ("take", "queued", "expect"),
    [
        # The watchdog fired while the service was frozen: the fallback has the call and
        # its import writes the rest of this same record.
        (TakeResult.ELSEWHERE, [], None),
        # Gone, and the events say the caller hung up while in the application.
        (
            TakeResult.GONE,
            [
                HangupRequested("1764540000.1", 16, "Normal Clearing", LEFT_AT),
                ChannelLeft("1764540000.1", LEFT_AT),
            ],
            (CallOutcome.ABANDONED, "abandoned at received: caller hung up, cause 16"),
        ),
        (
            TakeResult.GONE,
            [ChannelHungUp("1764540000.1", 16, "Normal Clearing", LEFT_AT)],
            (CallOutcome.ABANDONED, "abandoned at received"),
        ),
        # Gone after leaving the application alive: the dialplan (fallback) took it first.
        (TakeResult.GONE, [ChannelLeft("1764540000.1", LEFT_AT)], None),
    ],
)
async def test_what_the_pbx_answers_when_the_call_is_taken(
    take: TakeResult, queued: list[Any], expect: tuple[CallOutcome, str] | None
) -> None:
    pbx = FakePbx(take=take)
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678")))
    await arrive(service, caller())
    await feed(service, *queued)  # already in the queue when the flow looks
    await settle(service)
    assert len(trail.of(CallStarted)) == 1
    assert not originated(pbx), "nobody is rung for a call that is not ours"
    if expect is None:
        assert trail.ended is None  # the fallback's record completes this call
        assert trail.states == []
        return
    outcome, detail = expect
    assert trail.ended is not None
    assert trail.ended.outcome is outcome
    assert trail.ended.detail.startswith(detail)
    assert trail.ended.at == LEFT_AT  # when the caller left, by the PBX's clock


async def test_a_caller_who_leaves_during_the_announcement_rings_nobody() -> None:
    pbx = FakePbx(auto_finish_playbacks=False)
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678")))
    chan = caller()
    await arrive(service, chan)
    await until(lambda: bool(pbx.did("play")))
    playback = pbx.did("play")[0][2]
    # Asterisk's order: the hangup request, then the playback it cut short, then StasisEnd.
    await feed(
        service,
        HangupRequested(chan.id, 16, "Normal Clearing", LEFT_AT),
        PlaybackFinished(playback),
        ChannelLeft(chan.id, LEFT_AT),
    )
    await settle(service)
    assert not originated(pbx)
    assert trail.hops == []
    assert trail.ended is not None and trail.ended.outcome is CallOutcome.ABANDONED
    assert trail.ended.detail.startswith("abandoned at announcing")
    assert trail.ended.at == LEFT_AT


async def test_nobody_is_rung_when_the_pbx_says_the_caller_is_gone() -> None:
    # The hangup event has not reached the service yet; the PBX already knows.
    pbx = FakePbx(present=False)
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678"), announcement=None))
    await arrive(service, caller())
    await settle(service)
    assert not originated(pbx)
    assert trail.hops == []
    assert trail.ended is not None and trail.ended.outcome is CallOutcome.ABANDONED


async def test_draining_hands_the_call_to_the_fallback_and_says_why() -> None:
    pbx = FakePbx()
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678")))
    service.draining = True
    chan = caller()
    await arrive(service, chan)
    await settle(service)
    assert pbx.did("continue") == [
        (chan.id, "astreinte-fallback", "s", {"ASTREINTE_FB_TRIGGER": "draining"})
    ]
    assert len(trail.of(CallStarted)) == 1
    assert trail.ended is None  # completed by the fallback's import, same call id


async def test_a_key_pressed_during_a_gap_is_asked_for_again() -> None:
    pbx = FakePbx()
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678"), announcement=None))
    chan = caller()
    await arrive(service, chan)
    await until(lambda: bool(originated(pbx)))
    agent_id = originated(pbx)[0]["channel_id"]
    agent = Channel(agent_id, "PJSIP/alice-1", "Up", "", "", stasis_app="astreinte")
    await feed(service, ChannelEntered(agent, ("agent",)))
    await until(lambda: len(pbx.did("play")) >= 1)
    prompts_before = len([p for p in pbx.did("play") if p[0] == agent_id])
    # The event stream was cut; the agent's "1" during the cut is lost. The resync
    # replays the prompt instead of counting the silence as "not accepted".
    await feed(service, Resynced(channels=(chan, agent), bridges=()))
    await until(lambda: len([p for p in pbx.did("play") if p[0] == agent_id]) > prompts_before)
    await feed(service, DtmfReceived(agent_id, "1"))
    await until(lambda: bool(pbx.did("add_to_bridge")))
    await feed(service, ChannelHungUp(chan.id, 16, "Normal Clearing", T0 + timedelta(seconds=30)))
    await settle(service)
    assert trail.ended is not None and trail.ended.outcome is CallOutcome.ACCEPTED
    assert [e.outcome.value for e in trail.of(HopEnded)] == ["accepted"]


async def test_an_agent_who_answered_during_a_gap_is_prompted() -> None:
    pbx = FakePbx()
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678"), announcement=None))
    chan = caller()
    await arrive(service, chan)
    await until(lambda: bool(originated(pbx)))
    agent_id = originated(pbx)[0]["channel_id"]
    # Its StasisStart was lost in the gap: the snapshot shows it up, in our application.
    agent = Channel(agent_id, "PJSIP/alice-1", "Up", "", "", stasis_app="astreinte")
    await feed(service, Resynced(channels=(chan, agent), bridges=()))
    await until(lambda: any(p[0] == agent_id for p in pbx.did("play")))
    assert "agent_prompt" in trail.states
    await feed(service, ChannelHungUp("1764540000.1", 16, "Normal Clearing", LEFT_AT))
    await settle(service)


async def test_an_announcement_that_ended_during_a_gap_moves_the_call_on() -> None:
    pbx = FakePbx(auto_finish_playbacks=False)
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678")))
    chan = caller()
    await arrive(service, chan)
    await until(lambda: bool(pbx.did("play")))
    pbx.active_playbacks.clear()  # finished while nobody was listening
    await feed(service, Resynced(channels=(chan,), bridges=()))
    await until(lambda: bool(originated(pbx)))  # not after the 120 s playback cap
    assert trail.states[:2] == ["announcing", "dialing"]
    await feed(service, ChannelHungUp("1764540000.1", 16, "Normal Clearing", LEFT_AT))
    await settle(service)


class Records:
    """The PBX's own records (CEL), as the reconciliation reads them."""

    available = True

    def __init__(self, *history: ChannelHistory) -> None:
        self._history = {h.channel_id: h for h in history}

    async def history(self, channel_ids: Any, since: Any) -> dict[str, ChannelHistory]:
        return {cid: h for cid, h in self._history.items() if cid in channel_ids}


async def test_a_caller_who_left_during_a_gap_is_closed_with_the_pbx_time() -> None:
    pbx = FakePbx(auto_finish_playbacks=False)
    chan = caller()
    records = Records(ChannelHistory(chan.id, ended_at=LEFT_AT, cause=16))
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678")), pbx_records=records)
    await arrive(service, chan)
    await until(lambda: bool(pbx.did("play")))
    await feed(service, Resynced(channels=(), bridges=()))  # the caller is gone
    await settle(service)
    assert trail.ended is not None and trail.ended.outcome is CallOutcome.ABANDONED
    assert trail.ended.at == LEFT_AT
    assert not originated(pbx)


async def test_a_pbx_shutdown_is_not_counted_as_the_caller_abandoning() -> None:
    pbx = FakePbx(auto_finish_playbacks=False)
    service, trail, _ = make_service(pbx, plan(hop("alice", "+33612345678")))
    chan = caller()
    await arrive(service, chan)
    await until(lambda: bool(pbx.did("play")))
    # `core stop now`: Asterisk soft-hangs every channel up with reason 4 (shutdown).
    await feed(
        service,
        HangupRequested(chan.id, 4, "the PBX is shutting down", LEFT_AT, by_pbx=True),
        ChannelLeft(chan.id, LEFT_AT),
    )
    await settle(service)
    assert trail.ended is not None and trail.ended.outcome is CallOutcome.FAILED
    assert trail.ended.detail == "ended by the PBX at announcing: the PBX is shutting down"
    assert trail.ended.at == LEFT_AT


async def test_a_resync_hangs_up_leftover_legs_but_not_dialplan_helpers() -> None:
    pbx = FakePbx()
    service, _, _ = make_service(pbx, plan(hop("alice", "+33612345678"), announcement=None))
    leftover = Channel("astreinte-agent-0123abcd", "PJSIP/alice-9", "Ringing", "", "")
    publish = Channel("astreinte-publish-0123abcd4567", "Local/x@astreinte-publish-1", "Up", "", "")
    await feed(service, Resynced(channels=(leftover, publish), bridges=()))
    await until(lambda: service.ready.is_set() and bool(pbx.did("hangup")))
    hung_up = [args[0] for args in pbx.did("hangup")]
    # The AstDB publish leg runs in the dialplan while the service starts: killing
    # it made the fallback's last-resort publication time out.
    assert hung_up == ["astreinte-agent-0123abcd"]
