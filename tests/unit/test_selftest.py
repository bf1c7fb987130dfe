"""Test calls: the pure parts (plan, target, outcome, configuration), the call flow
of a test plan over the scripted PBX, the orchestration, alerts, metrics, schedule
and the HTTP trigger. The real-PBX path is tests/e2e/test_test_calls.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import ClientSession

from astreinte_ari.adapters.http.metrics_server import MetricsServer, SelfTestTrigger
from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.adapters.scheduler.apscheduler_jobs import CHORES, PersistentScheduler
from astreinte_ari.alerting.messages import subject_and_text
from astreinte_ari.alerting.missed_calls import is_missed
from astreinte_ari.app.selftest_edges import schedule_test_calls, token_matches, trigger_token
from astreinte_ari.callflow.audit_events import (
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopStarted,
)
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.identity import TEST_LEG, call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome, outcome_of_test_call
from astreinte_ari.callflow.selftest import LineSelfTester, SelfTestResult
from astreinte_ari.callflow.telephony import (
    Channel,
    ChannelEntered,
    PlaybackFinished,
    TelephonyError,
)
from astreinte_ari.config.loader import ConfigError, load_config
from astreinte_ari.config.model import AppConfig, MetricsConfig
from astreinte_ari.devtools.localpbx import free_port
from astreinte_ari.routing.plan import DialTarget, FinalAction, TargetKind
from astreinte_ari.routing.router import build_plan
from astreinte_ari.routing.selftest import decision_text, selftest_plan, selftest_target
from astreinte_ari.routing.targets import BUILTIN_TEST_DIAL, refusal
from tests.unit.callflow_fakes import DID, FakePbx, hop, make_service, plan
from tests.unit.callflow_line import Line
from tests.unit.virtual_time import virtual_time

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "astreinte.example.yaml"
BUILTIN = DialTarget(TargetKind.LOCAL, "builtin", BUILTIN_TEST_DIAL)
ALICE, SUP = hop("alice", "+33612345678"), hop("sup", "sip:desk-101")


# -- pure: the plan, the target, the outcome -------------------------------------------


@pytest.mark.parametrize(
    ("hops", "labels", "decision"),
    [
        (
            (ALICE,),
            ["alice [test call: would ring alice +33612345678]"],
            "alice: alice +33612345678",
        ),
        (
            (ALICE, SUP),
            [
                "alice [test call: would ring alice +33612345678]",
                "sup [test call: would ring sup sip:desk-101]",
            ],
            "alice: alice +33612345678, then sup: sup sip:desk-101",
        ),
        ((), [], "nobody to ring"),
    ],
)
def test_the_test_plan_is_the_real_one_aimed_at_the_endpoint(
    hops: tuple[Any, ...], labels: list[str], decision: str
) -> None:
    real = plan(*hops, final=FinalAction.VOICEMAIL)
    test = selftest_plan(real, BUILTIN, 12)
    assert [h.label for h in test.hops] == labels
    assert {h.person_id for h in test.hops} <= {"test-endpoint"}  # on nobody's record
    assert [h.person_name for h in test.hops] == [
        f"test endpoint instead of {h.person_name}" for h in real.hops
    ]
    assert {h.target for h in test.hops} <= {BUILTIN}
    assert {h.ring_timeout_s for h in test.hops} <= {12}
    assert test.final is FinalAction.HANGUP  # no voicemail: nobody reached = failed
    assert test.test_call and not real.test_call
    assert (test.announcement, test.period) == (real.announcement, real.period)
    assert decision_text(real) == decision


def test_the_test_endpoint_is_what_the_configuration_says() -> None:
    config = load_config(EXAMPLE)
    spec = config.lines["+33180000000"].test_call
    assert spec is not None and spec.minutes() == (3 * 60 + 30,)
    assert selftest_target(config, spec) == BUILTIN
    sip = spec.model_copy(update={"endpoint": "sip:loge-100"})
    assert selftest_target(config, sip).dial_string == "PJSIP/loge-100"
    number = spec.model_copy(update={"endpoint": "+33612000000"})
    assert selftest_target(config, number).dial_string == "PJSIP/+33612000000@operator"


@pytest.mark.parametrize(
    ("target", "refused"),
    [
        (BUILTIN, None),
        (DialTarget(TargetKind.LOCAL, "builtin", "Local/s@elsewhere/n"), "not the built-in"),
        (DialTarget(TargetKind.LOCAL, "x", "PJSIP/+33899000000@operator"), "not the built-in"),
    ],
)
def test_only_the_builtin_local_endpoint_may_be_dialled(
    target: DialTarget, refused: str | None
) -> None:
    why = refusal(load_config(EXAMPLE), target)
    assert (why is None) if refused is None else (refused in (why or "")), why


@pytest.mark.parametrize(
    ("outcome", "test"),
    [
        (CallOutcome.ACCEPTED, CallOutcome.TEST_PASSED),
        (CallOutcome.CONNECTED, CallOutcome.TEST_PASSED),
        (CallOutcome.NO_ONE, CallOutcome.TEST_FAILED),
        (CallOutcome.ABANDONED, CallOutcome.TEST_FAILED),
        (CallOutcome.FAILED, CallOutcome.TEST_FAILED),
        (CallOutcome.VOICEMAIL, CallOutcome.TEST_FAILED),
    ],
)
def test_a_test_call_passes_only_when_bridged(outcome: CallOutcome, test: CallOutcome) -> None:
    assert outcome_of_test_call(outcome) is test


# -- configuration: every mistake named with its line ----------------------------------


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ('at: ["03:30"]', 'at: ["25:30"]', "test_call.at", "not a valid time"),
        ('at: ["03:30"]', "at: []", "test_call.at", "at least one time"),
        ("alert: [claire]", "alert: [alice, zoe]", "test_call.alert[1]", "unknown person 'zoe'"),
        ("alert: [claire]", "alert: []", "test_call.alert", "at least one person"),
        ("endpoint: builtin", 'endpoint: "+33899000000"', "test_call.endpoint", "not allowed"),
        ("endpoint: builtin", "endpoint: PJSIP/x", "test_call.endpoint", "'builtin'"),
        ("timeout: 45   ", "timeout: 5    ", "test_call.timeout", "greater than or equal"),
        ("policy: missed_call ", "policy: nightly     ", "test_call.policy", "nightly"),
    ],
)
def test_test_call_mistakes_name_file_line_and_path(
    tmp_path: Path, old: str, new: str, path: str, fragment: str
) -> None:
    text = EXAMPLE.read_text()
    assert text.count(old) >= 1
    # Only the test_call block: the first occurrence after its key.
    start = text.index("    test_call:")
    edited = text[:start] + text[start:].replace(old, new, 1)
    target = tmp_path / "astreinte.yaml"
    target.write_text(edited)
    with pytest.raises(ConfigError) as info:
        load_config(target)
    dotted = f'lines."+33180000000".{path}'
    match = [i for i in info.value.issues if i.path == dotted and fragment in i.message]
    assert match, info.value.issues
    line = next(n for n, row in enumerate(edited.splitlines(), 1) if new.strip() in row)
    assert match[0].line == line


def test_a_test_call_needs_alerting(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    cut = text.index("\nalerting:")
    target = tmp_path / "astreinte.yaml"
    target.write_text(text[:cut] + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(target)
    assert any(
        i.path == 'lines."+33180000000".test_call' and "configure alerting" in i.message
        for i in info.value.issues
    ), info.value.issues


# -- the call flow of a test plan --------------------------------------------------------

TEST_CHANNEL = TEST_LEG + "0123456789abcdef"


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


# -- alerts, metrics, schedule, trigger ---------------------------------------------------


def _closed(outcome: CallOutcome, state: CallState = CallState.DIALING) -> CallClosed:
    at = datetime(2026, 12, 1, 2, 30, tzinfo=UTC)
    test = selftest_plan(plan(ALICE), BUILTIN, 10)
    return CallClosed("c", test, DID, "astreinte test call", outcome, "", at, at, state)


@pytest.mark.parametrize("outcome", [CallOutcome.TEST_FAILED, CallOutcome.TEST_PASSED])
def test_a_test_call_is_never_a_missed_call(outcome: CallOutcome) -> None:
    assert not is_missed(_closed(outcome))
    assert not is_missed(_closed(outcome, CallState.AGENT_PROMPT))


@pytest.mark.parametrize(
    ("language", "subject", "text"),
    [
        ("fr", "[Astreinte] Appel test en ÉCHEC sur Maintenance", "L'appel test de Maintenance"),
        ("en", "[On-call] Test call FAILED on Maintenance", "The test call of Maintenance"),
    ],
)
def test_the_failed_test_call_alert_says_so(language: str, subject: str, text: str) -> None:
    alert = SimpleNamespace(
        id="abcdef123456", kind="test_call_failed", language=language, line_name="Maintenance",
        call_id="1234abcd-0000", opened_at=datetime(2026, 12, 1, 2, 31, tzinfo=UTC),
    )  # fmt: skip
    got_subject, got_text = subject_and_text(alert, "Europe/Paris")  # type: ignore[arg-type]
    assert got_subject == subject
    assert got_text.startswith(text) and "1234abcd" in got_text and "03:31" in got_text


def test_test_calls_have_their_own_metrics_and_none_of_the_calls() -> None:
    metrics = ServiceMetrics()
    at = datetime(2026, 12, 1, 2, 30, tzinfo=UTC)
    call_id = call_id_for_channel(TEST_CHANNEL)
    for event in (
        CallStarted(call_id, DID, "Maintenance", "night", DID, "t", TEST_CHANNEL, at),
        HopStarted(call_id, "h1", 1, "primary", "alice", "Alice", "local:builtin", at),
        HopEnded("h1", HopOutcome.ACCEPTED, at, None, None, "1"),
        CallAnswered(call_id, "h1", "alice", at),
        CallEnded(call_id, CallOutcome.TEST_PASSED, at, "test call: ..."),
    ):
        metrics.on_audit_event(event)
    metrics.on_call_closed(_closed(CallOutcome.TEST_PASSED))
    metrics.on_test_call("Maintenance", passed=True, at=at)
    metrics.on_test_call("Maintenance", passed=False, at=at + timedelta(days=1))
    body = metrics.render().decode()
    assert 'astreinte_test_call_last_result{line="Maintenance"} 0.0' in body
    assert 'astreinte_test_calls_total{line="Maintenance",result="passed"} 1.0' in body
    assert 'astreinte_test_calls_total{line="Maintenance",result="failed"} 1.0' in body
    [stamp] = [row for row in body.splitlines() if row.startswith("astreinte_test_call_last_su")]
    assert float(stamp.split()[-1]) == at.timestamp(), stamp
    for family in (
        "astreinte_calls_total{",
        "astreinte_line_calls_total{",
        "astreinte_hops_total{",
    ):
        assert family not in body, family
    assert "astreinte_time_to_answer_seconds_count{" not in body


@virtual_time
async def test_test_calls_are_daily_jobs_in_the_configuration_zone() -> None:
    from sqlalchemy import create_engine

    config = load_config(EXAMPLE)
    scheduler = PersistentScheduler(create_engine("sqlite://"), paused=True)
    scheduler.start(lambda alert_id: asyncio.sleep(0))  # type: ignore[arg-type,return-value]
    tester = SimpleNamespace(run=lambda did: asyncio.sleep(0))
    try:
        assert schedule_test_calls(scheduler, config, tester) == 1  # type: ignore[arg-type]
        spec = config.lines["+33180000000"].test_call
        assert spec is not None
        two = config.model_copy(
            update={"lines": {**config.lines, "+33180000000": config.lines["+33180000000"]
                    .model_copy(update={"test_call": spec.model_copy(
                        update={"at": ("03:30", "15:00")})})}}
        )  # fmt: skip
        assert schedule_test_calls(scheduler, two, tester) == 2  # type: ignore[arg-type]
        jobs = scheduler.apscheduler.get_jobs(jobstore=CHORES)
        ours = sorted(j.id for j in jobs if j.id.startswith("test-call-"))
        assert ours == ["test-call-+33180000000-0330", "test-call-+33180000000-1500"]
        [night] = [j for j in jobs if j.id.endswith("-0330")]
        fire = night.trigger.get_next_fire_time(None, datetime(2026, 7, 1, tzinfo=UTC))
        assert fire.utcoffset() == timedelta(hours=2) and (fire.hour, fire.minute) == (3, 30)
    finally:
        scheduler.stop()


async def test_the_trigger_needs_the_token_and_answers_the_result() -> None:
    runs: list[str] = []

    async def run(did: str) -> SelfTestResult:
        runs.append(did)
        if did != DID:
            raise KeyError(f"line {did!r} has no test_call:")
        at = datetime(2026, 12, 1, tzinfo=UTC)
        return SelfTestResult(did, "Maintenance", False, "not bridged", "c1", at, at, "p1")

    port = free_port()
    server = MetricsServer(
        MetricsConfig(listen=f"127.0.0.1:{port}"),
        ServiceMetrics(),
        test_call=SelfTestTrigger(run, lambda token: token_matches(token, "ari-secret")),
    )
    await server.start()
    good = {"Authorization": f"Bearer {trigger_token('ari-secret')}"}
    try:
        async with ClientSession() as http:
            url = f"http://127.0.0.1:{port}/test-call/"
            for headers, status in (
                ({}, 403),
                ({"Authorization": "Bearer ari-secret"}, 403),  # the password is not the token
                ({"Authorization": f"Bearer {trigger_token('other')}"}, 403),
            ):
                async with http.post(url + DID, headers=headers) as reply:
                    assert reply.status == status
            assert runs == []
            async with http.post(url + DID, headers=good) as reply:
                assert reply.status == 200
                body = await reply.json()
            assert body["passed"] is False and body["detail"] == "not bridged"
            async with http.post(url + "+33999", headers=good) as reply:
                assert reply.status == 404
    finally:
        await server.close()


class _AriClient:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any], Any]] = []
        self.originated: list[dict[str, Any]] = []

    async def request(self, method: str, path: str, params: Any = None, body: Any = None) -> Any:
        self.requests.append((method, path, dict(params or {}), body))
        return {}

    async def originate(self, **kwargs: Any) -> dict[str, Any]:
        self.originated.append(kwargs)
        return {}


async def test_the_test_call_enters_through_the_inbound_context_with_phone_codecs() -> None:
    from astreinte_ari.adapters.ari.telephony import AriTelephony
    from astreinte_ari.callflow.telephony import DialRefused

    client = _AriClient()
    port = AriTelephony(client, lambda target: None)  # type: ignore[arg-type]
    await port.place_test_call(
        did=DID, inbound_channel_id=TEST_CHANNEL, source_channel_id="src", timeout_s=30
    )
    [(method, path, params, body)] = client.requests
    assert (method, path) == ("POST", "/channels")
    assert params["endpoint"] == f"Local/{DID}@astreinte-inbound/n"
    assert (params["context"], params["extension"]) == ("astreinte-testcall", "caller")
    assert (params["channelId"], params["otherChannelId"]) == ("src", TEST_CHANNEL)
    assert params["formats"] == "ulaw,alaw"
    # The dialplan bound is a backstop, later than the service's own verdict (30 s).
    assert body == {"variables": {"ASTREINTE_TEST_MAX_S": "45"}}
    for bad in ("+3318;x", "s@other", "+33 18"):
        with pytest.raises(DialRefused):
            await port.place_test_call(
                did=bad, inbound_channel_id=TEST_CHANNEL, source_channel_id="s", timeout_s=30
            )
    assert len(client.requests) == 1
    await port.originate(
        channel_id="astreinte-agent-x", target=BUILTIN, app_args=(), caller_id=DID, timeout_s=9
    )
    await port.originate(
        channel_id="astreinte-agent-y",
        target=ALICE.target,
        app_args=(),
        caller_id=DID,
        timeout_s=9,
    )
    assert [o["formats"] for o in client.originated] == ["ulaw,alaw", None]
