"""Voice alerts as call flows: the notifier over the dispatcher's runtime, on a fake PBX.

Each test places one alert call and plays the PBX's side (answer, keys,
hangups); the call's transitions, the call-back hop and the notifier's result
are checked. The real-Asterisk version of these calls is tests/alerts/test_voice_alerts.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from astreinte_ari.adapters.notify.voice import VoiceNotifier, prompts_for
from astreinte_ari.alerting.ports import AlertMessage, Delivery, NotifyError, Recipient
from astreinte_ari.callflow import alert_call
from astreinte_ari.callflow.alert_call import ALERT_CALL_TRANSITIONS, AlertCallState
from astreinte_ari.callflow.audit_events import HopEnded, HopStarted
from astreinte_ari.callflow.causes import q850_text
from astreinte_ari.callflow.dispatch import OnCallService
from astreinte_ari.callflow.telephony import (
    Channel,
    ChannelEntered,
    ChannelHungUp,
    ChannelLeft,
    DialRefused,
    DtmfReceived,
    PlaybackFinished,
    Resynced,
    TelephonyError,
)
from astreinte_ari.routing.plan import DialTarget, TargetKind
from tests.unit.callflow_fakes import FakePbx, Trail, make_service

PERSON = Recipient("alice", "Alice", "+33610000001", None)
CALLER = "+33199000001"
S = AlertCallState


def message(*, call_back: bool = True) -> AlertMessage:
    return AlertMessage(
        alert_id="alert-1",
        kind="missed_call",
        subject="Missed call",
        text="Missed call from 0199000001",
        language="fr",
        caller_number="0199000001",
        call_id="call-1",
        can_call_back=call_back,
    )


class StuckPlaybackPbx(FakePbx):
    """Playbacks run until stopped, and stopping one that just ended fails (HTTP 500)."""

    async def stop_playback(self, playback_id: str) -> bool:
        self.actions.append(("stop_playback", (playback_id,)))
        raise TelephonyError("ARI DELETE /playbacks/x -> HTTP 500: Could not stop playback")


class RefusingPbx(FakePbx):
    async def originate(self, **kwargs: Any) -> None:
        raise DialRefused(f"{kwargs['target'].address} is not allowed by trunk.allowed_prefixes")


@dataclass
class AlertCall:
    pbx: FakePbx
    service: OnCallService
    trail: Trail
    task: asyncio.Task[Delivery]
    steps: list[str]
    acks: list[str]

    async def originated(self, n: int = 1) -> str:
        """The channel id of the n-th originate, once the call has placed it."""
        await until(lambda: len(self.pbx.did("originate")) >= n)
        return str(dict(self.pbx.did("originate")[n - 1])["channel_id"])

    async def answer(self, channel_id: str) -> None:
        channel = Channel(channel_id, "PJSIP/x", "Up", "", "")
        await self.service.handle(ChannelEntered(channel, ("alert",)))

    async def press(self, channel_id: str, digit: str) -> None:
        await self.service.handle(DtmfReceived(channel_id, digit))

    async def hang_up(self, channel_id: str, cause: int = 16) -> None:
        await self.service.handle(ChannelLeft(channel_id))
        await self.service.handle(ChannelHungUp(channel_id, cause, "Normal Clearing"))

    @property
    def states(self) -> list[str]:
        return [s.split(":")[0].removeprefix("call ") for s in self.steps]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def through_trunk(number: str) -> DialTarget:
    """Every number through a trunk dialled as PJSIP/<number> (the PBX checks nothing)."""
    return DialTarget(TargetKind.TRUNK, number, f"PJSIP/{number}")


def trunk_allowing(*prefixes: str) -> Callable[[str], DialTarget]:
    """As routing.targets.trunk_target: numbers outside `prefixes` raise ValueError."""

    def resolve(number: str) -> DialTarget:
        if not number.startswith(prefixes):
            raise ValueError(f"{number!r} is not allowed by the trunk ({', '.join(prefixes)})")
        return through_trunk(number)

    return resolve


async def place(
    pbx: FakePbx | None = None,
    *,
    call_back: bool = True,
    dial_target: Callable[[str], DialTarget] = through_trunk,
) -> AlertCall:
    pbx = pbx or FakePbx()
    service, trail, _ = make_service(pbx, None)
    await service.handle(Resynced(channels=(), bridges=()))  # telephony ready
    steps: list[str] = []
    acks: list[str] = []

    async def acknowledge(how: str) -> None:
        acks.append(how)

    notifier = VoiceNotifier(
        calls=service,
        caller_id="+33180000000",
        ring_timeout_s=20,
        next_hop_seq=lambda _: 3,
        dial_target=dial_target,
    )
    task = asyncio.create_task(
        notifier.send(PERSON, message(call_back=call_back), acknowledge, steps.append)
    )
    return AlertCall(pbx, service, trail, task, steps, acks)


async def test_key_1_acknowledges_and_thanks_the_person() -> None:
    call = await place()
    leg = await call.originated()
    await call.answer(leg)
    await call.press(leg, "1")
    delivery = await asyncio.wait_for(call.task, 5)
    assert (delivery.acked, delivery.called_back) == (True, False)
    assert call.acks == ["voice-dtmf"]
    assert call.states == ["ringing -> reading", "reading -> acknowledged", "acknowledged -> ended"]
    played = [media for _, media, _ in call.pbx.did("play")]
    assert played[-1].endswith("/fr/astreinte-alert-acked")
    assert (leg,) in call.pbx.did("hangup")


async def test_a_key_during_a_playback_that_cannot_be_stopped_still_counts() -> None:
    """Issue 16: HTTP 500 "Could not stop playback" crashed the alert call."""
    call = await place(StuckPlaybackPbx(auto_finish_playbacks=False))
    leg = await call.originated()
    await call.answer(leg)
    await until(lambda: len(call.pbx.did("play")) >= 1)
    await call.press(leg, "1")
    await until(lambda: len(call.pbx.did("play")) >= 2)  # "thank you"
    await call.service.handle(PlaybackFinished(call.pbx.did("play")[-1][2]))
    delivery = await asyncio.wait_for(call.task, 5)
    assert delivery.acked and call.acks == ["voice-dtmf"]
    assert call.pbx.did("stop_playback")


async def test_key_2_calls_the_caller_back_and_records_a_hop_of_the_call() -> None:
    call = await place()
    leg = await call.originated()
    await call.answer(leg)
    await call.press(leg, "2")
    back = await call.originated(2)
    assert dict(call.pbx.did("originate")[1])["target"] == through_trunk("0199000001")
    await call.answer(back)
    await until(lambda: bool(call.pbx.did("add_to_bridge")))
    await call.hang_up(back)
    delivery = await asyncio.wait_for(call.task, 5)
    assert (delivery.acked, delivery.called_back) == (True, True)
    assert call.acks == ["voice-callback"]
    assert call.states == [
        "ringing -> reading",
        "reading -> calling_back",
        "calling_back -> bridged",
        "bridged -> ended",
    ]
    [started] = call.trail.of(HopStarted)
    [ended] = call.trail.of(HopEnded)
    assert (started.call_id, started.seq, started.label) == ("call-1", 3, "call-back")
    assert (ended.outcome, ended.dtmf) == ("connected", "2")
    assert "talked" in (ended.cause_text or "")
    assert call.pbx.did("destroy_bridge")


async def test_the_person_hanging_up_during_the_call_back_cancels_it() -> None:
    call = await place()
    leg = await call.originated()
    await call.answer(leg)
    await call.press(leg, "2")
    back = await call.originated(2)
    await call.hang_up(leg)
    delivery = await asyncio.wait_for(call.task, 5)
    assert delivery.called_back and "cancelled" in delivery.detail
    [ended] = call.trail.of(HopEnded)
    assert ended.outcome == "cancelled"
    assert (back,) in call.pbx.did("hangup")
    assert call.states[-1].endswith("-> ended") and "calling_back -> ended" in call.states


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        (17, "busy (user busy)"),
        (21, "rejected (call rejected)"),
        (18, "unreachable: no user"),
    ],
    ids=["busy", "rejected", "unreachable"],
)
async def test_an_unanswered_alert_call_fails_with_the_pbx_cause(cause: int, words: str) -> None:
    call = await place()
    leg = await call.originated()
    await call.service.handle(ChannelHungUp(leg, cause, q850_text(cause)))
    with pytest.raises(NotifyError) as failed:
        await asyncio.wait_for(call.task, 5)
    assert str(failed.value).startswith("voice call to +33610000001: ")
    assert words in str(failed.value).lower(), failed.value
    assert call.states == ["ringing -> ended"]


async def test_a_number_outside_the_allow_list_is_never_dialled() -> None:
    call = await place(RefusingPbx())
    with pytest.raises(NotifyError, match="not allowed"):
        await asyncio.wait_for(call.task, 5)
    assert call.states == ["ringing -> ended"]


async def test_a_mobile_the_trunk_refuses_is_never_dialled() -> None:
    call = await place(dial_target=trunk_allowing("+337"))
    with pytest.raises(NotifyError, match=r"voice call to \+33610000001 refused: .*not allowed"):
        await asyncio.wait_for(call.task, 5)
    assert call.pbx.did("originate") == []


async def test_a_caller_number_the_trunk_refuses_is_a_refused_call_back_hop() -> None:
    call = await place(dial_target=trunk_allowing("+336"))  # the caller is 0199000001
    leg = await call.originated()
    await call.answer(leg)
    await call.press(leg, "2")
    delivery = await asyncio.wait_for(call.task, 5)
    assert delivery.called_back and "refused" in delivery.detail, delivery
    assert len(call.pbx.did("originate")) == 1  # only the person's leg
    [started] = call.trail.of(HopStarted)
    [ended] = call.trail.of(HopEnded)
    assert (started.number, started.target_kind, started.target) == ("0199000001", None, None)
    assert ended.outcome == "refused" and "not allowed" in (ended.cause_text or "")
    assert call.states == ["ringing -> reading", "reading -> calling_back", "calling_back -> ended"]


async def test_hanging_up_while_the_message_is_read_leaves_the_alert_open() -> None:
    call = await place(FakePbx(auto_finish_playbacks=False))
    leg = await call.originated()
    await call.answer(leg)
    await call.hang_up(leg)
    with pytest.raises(NotifyError, match="alice hung up without a key"):
        await asyncio.wait_for(call.task, 5)
    assert call.acks == [] and call.states == ["ringing -> reading", "reading -> ended"]


async def test_wrong_keys_do_not_count_and_no_key_fails_after_two_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alert_call, "KEY_WAIT_S", 0.05)
    call = await place(call_back=False)
    leg = await call.originated()
    await call.answer(leg)
    await call.press(leg, "2")  # not offered without a caller to call back
    await call.press(leg, "\x00")  # untrusted input: shown masked
    with pytest.raises(NotifyError, match=r"only '2\?', which is not offered pressed"):
        await asyncio.wait_for(call.task, 5)
    media = [m.rsplit("/", 1)[1] for _, m, _ in call.pbx.did("play")]
    assert media == list(prompts_for(message(call_back=False))) * 2
    assert call.acks == []


def test_every_alert_call_state_can_be_reached_and_left() -> None:
    reachable = {S.RINGING} | {s for targets in ALERT_CALL_TRANSITIONS.values() for s in targets}
    assert reachable == set(AlertCallState)
    assert all(S.ENDED in ALERT_CALL_TRANSITIONS[s] for s in AlertCallState if s != S.ENDED)
