"""Test calls over the scripted PBX: the call flow of a test plan in virtual time,
and the orchestration that places the test calls and reports their results."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from astreinte_ari.callflow.audit_events import CallStarted, HopEnded
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.selftest import LineSelfTester, SelfTestResult
from astreinte_ari.callflow.telephony import (
    Channel,
    ChannelEntered,
    PlaybackFinished,
    TelephonyError,
)
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.plan import TargetKind
from astreinte_ari.routing.router import build_plan
from astreinte_ari.routing.selftest import selftest_plan
from tests.unit.callflow_fakes import DID, FakePbx, make_service, plan
from tests.unit.callflow_line import Line
from tests.unit.selftest_helpers import ALICE, BUILTIN, EXAMPLE, TEST_CHANNEL
from tests.unit.virtual_time import virtual_time


async def _test_call(line: Line, test_plan: Any) -> str:
    line.service.expect_test_call(TEST_CHANNEL, test_plan)
    channel = Channel(TEST_CHANNEL, "Local/x;2", "Up", DID, "", exten=DID, created_at=line.now())
    await line.feed(ChannelEntered(channel, (DID,), at=line.now()))
    return call_id_for_channel(TEST_CHANNEL)


@virtual_time
async def test_a_bridged_test_call_ends_at_once_as_passed() -> None:
    line = Line(plan(ALICE))
    call_id = await _test_call(line, selftest_plan(plan(ALICE), BUILTIN, 10))
    leg = await line.leg()
    assert line.originated()[0]["target"] == BUILTIN
    await line.answers(leg)
    await line.presses(leg, "1")
    await line.done()
    ended = line.ended(call_id)
    assert ended.outcome is CallOutcome.TEST_PASSED
    assert ended.detail.startswith("test call: ") and "the service (test call bridged)" in (
        ended.detail
    )
    assert CallState.BRIDGED in line.states(call_id)
    assert (leg,) in line.pbx.did("hangup") and (TEST_CHANNEL,) in line.pbx.did("hangup")
    [started] = line.trail.of(CallStarted)
    assert started.caller_name == "astreinte test call" and started.channel_id == TEST_CHANNEL


@virtual_time
async def test_a_test_call_whose_announcement_failed_did_not_pass() -> None:
    line = Line(plan(ALICE), pbx=FakePbx(held_sounds=frozenset({"astreinte-after-hours"})))
    call_id = await _test_call(line, selftest_plan(plan(ALICE), BUILTIN, 10))
    announcement = await line.playing("astreinte-after-hours")
    await line.feed(PlaybackFinished(announcement, failed=True))
    leg = await line.leg()
    await line.answers(leg)
    await line.presses(leg, "1")
    await line.done()
    ended = line.ended(call_id)
    assert ended.outcome is CallOutcome.TEST_FAILED
    assert ended.detail.endswith("but failed to play: astreinte-after-hours"), ended.detail


@virtual_time
async def test_an_unanswered_test_call_fails_without_voicemail() -> None:
    line = Line(plan(ALICE))
    call_id = await _test_call(line, selftest_plan(plan(ALICE), BUILTIN, 10))
    leg = await line.leg()
    await line.rings(leg)
    await line.fails(leg, 19, "No answer")
    await line.done()
    ended = line.ended(call_id)
    assert ended.outcome is CallOutcome.TEST_FAILED
    assert line.pbx.did("record") == []
    [hop_end] = line.trail.of(HopEnded)
    assert hop_end.outcome is HopOutcome.NO_ANSWER


@virtual_time
async def test_an_unexpected_own_channel_is_no_test_call() -> None:
    line = Line(plan(ALICE))
    channel = Channel(TEST_CHANNEL, "Local/x;2", "Up", DID, "", exten=DID, created_at=line.now())
    await line.feed(ChannelEntered(channel, (DID,), at=line.now()))
    await line.until(lambda: bool(line.pbx.did("hangup")), "the stray channel hung up")
    assert line.trail.of(CallStarted) == [] and line.originated() == []


# -- the orchestration ------------------------------------------------------------------


class _Pbx(FakePbx):
    """place_test_call: the Local channel enters the application (or not), as scripted."""

    enters: bool = True
    answers: bool = True

    async def place_test_call(self, **kwargs: Any) -> None:
        self._act("place_test_call", tuple(sorted(kwargs.items())))
        if self.enters:
            inbound = kwargs["inbound_channel_id"]
            channel = Channel(inbound, "Local/;2", "Up", DID, "", exten=DID)
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self._enter(channel))
            )

    async def _enter(self, channel: Channel) -> None:
        assert self.service is not None
        await self.service.handle(ChannelEntered(channel, (DID,)))
        if not self.answers:
            return
        while not self.did("originate"):
            await self.next_change()
        leg = dict(self.did("originate")[0])["channel_id"]
        await self.service.handle(ChannelEntered(Channel(leg, "Local/a;1", "Up", "", ""), ()))
        from astreinte_ari.callflow.telephony import DtmfReceived

        await self.service.handle(DtmfReceived(leg, "1"))


def _tester(pbx: _Pbx, config: AppConfig) -> tuple[LineSelfTester, list[SelfTestResult]]:
    service, _, _ = make_service(pbx, None)
    results: list[SelfTestResult] = []

    def plan_for(did: str, now: datetime) -> Any:
        return build_plan(config, did, now)

    tester = LineSelfTester(
        service=service,
        port=pbx,  # type: ignore[arg-type]
        plan_for=plan_for,
        config=lambda: config,
        clock=lambda: datetime(2026, 12, 1, 2, 30, tzinfo=UTC),
        listeners=(results.append,),
    )
    return tester, results


@pytest.mark.parametrize(
    ("script", "passed", "detail"),
    [
        ({}, True, "bridged with the test endpoint"),
        ({"enters": False}, False, "never entered the application"),
        ({"answers": False}, False, "not bridged within 10 s"),
        ({"errors": {"place_test_call": TelephonyError("500")}}, False, "could not place"),
    ],
)
@virtual_time
async def test_the_test_call_result(script: dict[str, Any], passed: bool, detail: str) -> None:
    config = load_config(EXAMPLE)
    spec = config.lines["+33180000000"].test_call
    assert spec is not None
    lines = dict(config.lines)
    lines["+33180000000"] = lines["+33180000000"].model_copy(
        update={"test_call": spec.model_copy(update={"timeout": 10})}
    )
    config = config.model_copy(update={"lines": lines})
    pbx = _Pbx(**{k: v for k, v in script.items() if k == "errors"})
    pbx.enters, pbx.answers = script.get("enters", True), script.get("answers", True)
    tester, results = _tester(pbx, config)
    result = await tester.run("+33180000000")
    assert result.passed is passed and detail in result.detail, result
    assert results == [result]
    assert "alice" in result.decision or "chloe" in result.decision or "bruno" in result.decision
    if not passed and script.get("enters", True) and not script.get("errors"):
        assert pbx.did("hangup"), "the overdue test call is hung up"
    assert not pbx.did("originate") or all(
        dict(args)["target"].kind is TargetKind.LOCAL for args in pbx.did("originate")
    ), "only the test endpoint is ever dialled"
