"""Test calls at the edges: never a missed call, the failed-test-call alert, their own
metrics, the daily schedule, the HTTP trigger, and the ARI origination."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
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
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.selftest import SelfTestResult
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import MetricsConfig
from astreinte_ari.devtools.localpbx import free_port
from astreinte_ari.routing.selftest import selftest_plan
from tests.unit.callflow_fakes import DID, plan
from tests.unit.selftest_helpers import ALICE, BUILTIN, EXAMPLE, TEST_CHANNEL
from tests.unit.virtual_time import virtual_time


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
