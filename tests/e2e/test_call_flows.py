"""Real calls through a real Asterisk: sipp plays the caller and the agents' mobiles.

Each scenario runs on SQLite and on PostgreSQL (the `service` fixture is
parametrised), with the same audit assertions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from astreinte_ari.adapters.store.queries import CallDetail
from tests.e2e.rig import (
    DESK,
    LINE_DESK,
    LINE_FULL,
    LINE_SHORT,
    OUTSIDE,
    P1,
    P2,
    SUP,
    E2ERig,
    ServiceProcess,
    finish,
    now_utc,
)

pytestmark = pytest.mark.e2e


def _states(call: CallDetail) -> list[str]:
    return [t.to_state for t in call.transitions]


def _outcomes(call: CallDetail) -> list[tuple[str, str | None]]:
    return [(h.person_id, h.outcome) for h in call.hops]


@pytest.mark.smoke
def test_agent_answers_and_presses_1_is_bridged(rig: E2ERig, service: ServiceProcess) -> None:
    since = now_utc()
    agent = rig.phone(P1, rig.agent("accept", dtmf="1", dtmf_after_ms=1200))
    caller = rig.call(LINE_FULL, hold_ms=14000, caller="+33199000001")
    bridged = rig.wait_for_bridge("astreinte-agent-")  # caller and agent, for real
    assert any(not c.startswith("astreinte-") for c in bridged), bridged
    finish(caller, agent)
    call = service.wait_for_call(since, LINE_FULL)
    assert call.outcome == "accepted", call.outcome_detail
    assert _outcomes(call) == [("p1", "accepted")]
    hop = call.hops[0]
    assert hop.dtmf == "1"
    assert hop.number == P1
    assert hop.ringing_at and hop.answered_at and hop.accepted_at and hop.ended_at
    assert hop.started_at <= hop.ringing_at <= hop.answered_at <= hop.accepted_at <= hop.ended_at
    assert call.accepted_person_id == "p1"
    assert call.talk_seconds is not None and call.talk_seconds > 1.0
    assert _states(call) == ["announcing", "dialing", "agent_prompt", "bridged", "ended"]
    assert call.caller_number == "+33199000001"
    assert call.period == "after_hours"
    assert service.metrics_url is not None
    with urllib.request.urlopen(service.metrics_url, timeout=5) as resp:
        samples = _samples(resp.read().decode())
    assert samples[("astreinte_calls_total", (("outcome", "accepted"),))] >= 1
    line = (("line", "Maintenance E2E"),)
    assert samples[("astreinte_line_calls_total", (*line, ("outcome", "accepted")))] >= 1
    hop = (("cause", "16"), *line, ("outcome", "accepted"))  # 16: normal clearing
    assert samples[("astreinte_hops_total", hop)] >= 1, sorted(samples)
    assert samples[("astreinte_time_to_answer_seconds_count", line)] >= 1
    assert samples[("astreinte_ari_connected", ())] == 1.0
    # Read at scrape time from their owners: the journal caught up, no fallback call.
    assert samples[("astreinte_journal_backlog_events", ())] == 0
    assert ("astreinte_fallback_calls_imported_total", ()) in samples
    assert ("process_resident_memory_bytes", ()) in samples


def _samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text format, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def test_first_hop_to_a_desk_phone_on_the_pbx_is_bridged(
    rig: E2ERig, service: ServiceProcess
) -> None:
    """A hop whose target is a SIP endpoint of the PBX (`sip: desk-101`), not a mobile
    through the trunk: Asterisk dials PJSIP/desk-101, the desk phone presses 1."""
    since = now_utc()
    desk = rig.phone(DESK, rig.agent("accept", dtmf="1", dtmf_after_ms=1200))
    caller = rig.call(LINE_DESK, hold_ms=14000)
    bridged = rig.wait_for_bridge("astreinte-agent-")
    agent_leg = next(c for c in bridged if c.startswith("astreinte-agent-"))
    leg = rig.pbx.ari_get(f"/channels/{agent_leg}")
    assert isinstance(leg, dict) and leg["name"].startswith(f"PJSIP/{DESK}-"), leg
    finish(caller, desk)
    call = service.wait_for_call(since, LINE_DESK)
    assert call.outcome == "accepted", call.outcome_detail
    assert _outcomes(call) == [("desk", "accepted")]
    hop = call.hops[0]
    assert (hop.target_kind, hop.target, hop.number) == ("sip", f"PJSIP/{DESK}", f"sip:{DESK}")
    assert hop.dtmf == "1" and hop.accepted_at is not None
    assert call.accepted_person_id == "desk"
    assert _states(call) == ["announcing", "dialing", "agent_prompt", "bridged", "ended"]
    shown = subprocess.run(
        [sys.executable, "-m", "astreinte_ari", "calls", "show", call.id, "--url", service.db_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "COLUMNS": "250"},  # one table row per line
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"sip:{DESK} (sip: PJSIP/{DESK})" in shown.stdout, shown.stdout


def test_no_answer_times_out_then_supervisor_accepts(rig: E2ERig, service: ServiceProcess) -> None:
    since = now_utc()
    first = rig.phone(P1, rig.agent("noanswer"))
    supervisor = rig.phone(SUP, rig.agent("accept"))
    caller = rig.call(LINE_SHORT, hold_ms=24000)
    finish(caller, first, supervisor)
    call = service.wait_for_call(since, LINE_SHORT)
    assert call.outcome == "accepted", call.outcome_detail
    assert _outcomes(call) == [("p1", "no_answer"), ("sup", "accepted")]
    ring_time = (call.hops[0].ended_at - call.hops[0].started_at).total_seconds()
    assert 5.0 <= ring_time <= 10.0, ring_time  # the 6 s hop timeout, not SIP's 32 s
    assert call.hops[0].ringing_at is not None


@pytest.mark.smoke
def test_busy_goes_to_next_hop_at_once(rig: E2ERig, service: ServiceProcess) -> None:
    since = now_utc()
    busy = rig.phone(P1, rig.agent("busy"))
    second = rig.phone(P2, rig.agent("accept"))
    caller = rig.call(LINE_FULL, hold_ms=16000)
    finish(caller, busy, second)
    call = service.wait_for_call(since, LINE_FULL)
    assert _outcomes(call) == [("p1", "busy"), ("p2", "accepted")]
    assert call.hops[0].cause_code == 17
    gap = (call.hops[1].started_at - call.hops[0].ended_at).total_seconds()
    assert gap < 1.0, gap
    assert (call.hops[0].ended_at - call.hops[0].started_at).total_seconds() < 2.0


def test_answer_without_key_is_not_accepted(rig: E2ERig, service: ServiceProcess) -> None:
    """A personal voicemail answers but never presses 1: that is not a success."""
    since = now_utc()
    voicemail_like = rig.phone(P1, rig.agent("silent"))
    second = rig.phone(P2, rig.agent("accept"))
    caller = rig.call(LINE_FULL, hold_ms=26000)
    finish(caller, voicemail_like, second)
    call = service.wait_for_call(since, LINE_FULL)
    assert _outcomes(call) == [("p1", "not_accepted"), ("p2", "accepted")]
    assert call.hops[0].answered_at is not None
    assert call.hops[0].accepted_at is None
    assert call.accepted_person_id == "p2"


@pytest.mark.smoke
def test_every_hop_fails_then_voicemail_is_recorded(rig: E2ERig, service: ServiceProcess) -> None:
    since = now_utc()
    busy = rig.phone(P1, rig.agent("busy"))
    reject = rig.phone(P2, rig.agent("reject"))
    # Nothing answers on the supervisor's mobile: unreachable within the hop timeout.
    caller = rig.call(LINE_FULL, hold_ms=60000)
    finish(caller, busy, reject)
    call = service.wait_for_call(since, LINE_FULL)
    assert call.outcome == "voicemail", call.outcome_detail
    assert [o for _, o in _outcomes(call)] == ["busy", "rejected", "unreachable"]
    assert call.hops[1].cause_code == 21
    assert _states(call)[-3:] == ["voicemail_greeting", "recording", "ended"]
    assert call.voicemail_path is not None
    path = Path(call.voicemail_path)
    assert path.is_file() and path.stat().st_size > 8000  # > 0.5 s of 8 kHz audio
    assert path.is_relative_to(service.recordings)
    assert call.voicemail_seconds is not None and 1.0 < call.voicemail_seconds <= 12.0


def test_caller_hangs_up_while_agent_rings(rig: E2ERig, service: ServiceProcess) -> None:
    since = now_utc()
    ringing = rig.phone(P1, rig.agent("noanswer"))
    # The announcement lasts ~6.7 s; hang up ~2 s into the first hop's ringing.
    caller = rig.call(LINE_FULL, hold_ms=9000)
    finish(caller, ringing)  # the phone got a CANCEL: the leg was torn down
    call = service.wait_for_call(since, LINE_FULL)
    assert call.outcome == "abandoned", call.outcome_detail
    assert "dialing" in (call.outcome_detail or "")
    # The caller's own BYE cause (from ChannelHangupRequest: StasisEnd comes first).
    assert "caller hung up, cause 16 Normal Clearing" in (call.outcome_detail or "")
    assert _outcomes(call) == [("p1", "cancelled")]
    assert call.answered_at is None


def test_number_outside_allow_list_is_never_dialled(
    tmp_path: Path, service: ServiceProcess
) -> None:
    """A configuration naming a number outside the trunk's allow-list is refused whole."""
    text = service.config_path.read_text().replace(f'mobile: "{SUP}"', f'mobile: "{OUTSIDE}"')
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    for command in ("check", "run"):
        result = subprocess.run(
            [sys.executable, "-m", "astreinte_ari", command, "-c", str(bad)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "teams.e2e.people.sup.mobile" in result.stdout
        assert OUTSIDE in result.stdout


def test_agent_hangs_up_first_caller_is_released(rig: E2ERig, service: ServiceProcess) -> None:
    since = now_utc()
    agent = rig.phone(P1, rig.agent("accept", talk_ms=4000))  # the agent ends the call
    caller = rig.call(LINE_FULL, hold_ms=40000)  # would stay much longer
    finish(caller, agent)  # the caller got a BYE from the PBX: torn down for it
    call = service.wait_for_call(since, LINE_FULL)
    assert call.outcome == "accepted", call.outcome_detail
    assert "ended by agent" in (call.outcome_detail or "")
    assert call.talk_seconds is not None and 2.0 < call.talk_seconds < 8.0
    assert call.hops[0].cause_code == 16  # normal clearing, from the agent's BYE


def test_unknown_did_is_told_hung_up_and_audited(rig: E2ERig, service: ServiceProcess) -> None:
    since = now_utc()
    caller = rig.call("+33180009999", hold_ms=30000)  # hangs up itself only after 30 s
    started = time.monotonic()
    finish(caller)  # the PBX hung up on it: after the prompt, not after 30 s
    assert time.monotonic() - started < 15
    call = service.wait_for_call(since, "+33180009999")
    assert call.outcome == "failed" and call.hops == ()
    assert "no line configured" in (call.outcome_detail or "")
