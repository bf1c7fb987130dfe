"""The wire parser (tests/rig/wire.py) on real sipp traces, and the many-calls scenarios
(crowd.py, phones.py) against each other: real sipp on loopback, no Asterisk."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from astreinte_ari.devtools.localpbx import free_port
from tests.rig.crowd import CallPlan, injection_file, numbered, rate_args, start_callers
from tests.rig.phones import agent_phone_scenario, start_agent_phone
from tests.rig.polling import wait_until
from tests.rig.wire import agent_legs, caller_legs, parse_dtmf_log, parse_trace

DATA = Path(__file__).parent / "data"
needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")
SLACK_MS = 1000  # the machine is shared and loaded: timing checks at the issue's ±1 s


def test_a_real_trace_written_in_another_zone_reads_back_in_utc() -> None:
    # Captured from `sipp -sn uac` run with TZ=Asia/Kolkata (UTC+05:30) at 15:30:06 UTC.
    data = (DATA / "sipp_uac_asia_kolkata_messages.log").read_bytes()
    assert b"2026-11-30 21:00:06.718598" in data  # local time, no zone written
    messages = parse_trace(data, ZoneInfo("Asia/Kolkata"))
    assert [(m.sent, m.method or m.status) for m in messages] == [
        (True, "INVITE"),
        (False, 180),
        (False, 200),
        (True, "ACK"),
        (True, "BYE"),
        (False, 200),
    ]
    (leg,) = caller_legs(messages)
    assert leg.invite_at == datetime(2026, 11, 30, 15, 30, 6, 718598, tzinfo=UTC)
    assert (leg.number, leg.display_name, leg.final_status) == ("sipp", "sipp", 200)
    assert leg.bye_by == "caller" and leg.ended_by == "caller"
    assert leg.ended_at == datetime(2026, 11, 30, 15, 30, 6, 725888, tzinfo=UTC)
    assert parse_trace(data, UTC)[0].at == leg.invite_at + timedelta(hours=5, minutes=30)


def test_untimed_notes_and_compact_headers() -> None:
    # sipp writes "Unexpected ... message received" after a dashed line WITHOUT a time
    # (src/call.cpp): it repeats a message already logged, so it must not count twice.
    trace = (
        b"----------------------------------------------- 2026-11-30 10:00:00.000001\n"
        b"UDP message received [10] bytes :\n\n"
        b"BYE sip:a@127.0.0.1 SIP/2.0\r\ni: 7-1@h\r\nf: <sip:+331@h>;tag=x\r\nCSeq: 2 BYE\r\n\r\n\n"
        b"-----------------------------------------------\n"
        b"Unexpected UDP message received:\n\n"
        b"BYE sip:a@127.0.0.1 SIP/2.0\r\ni: 7-1@h\r\n\r\n\n"
        b"UDP message lost (recv).\n"
    )
    (message,) = parse_trace(trace, UTC)
    assert (message.method, message.call_id, message.cseq_method) == ("BYE", "7-1@h", "BYE")
    assert message.header("From") == "<sip:+331@h>;tag=x"


def test_dtmf_log_lines() -> None:
    text = "dtmf 3-9@127.0.0.1 1796053334.000000 326773.000000 1\nsomething else\n"
    at, digit = parse_dtmf_log(text)["3-9@127.0.0.1"]
    assert digit == "1" and at == datetime.fromtimestamp(1796053334.326773, UTC)


def test_injection_file_refuses_what_sipp_cannot_carry(tmp_path: Path) -> None:
    good = CallPlan("+331", name=b"\xff\xfeRaw", hang_up_after_invite_ms=1500)
    text = injection_file(tmp_path / "ok.csv", [good], 5070).read_bytes()
    assert text == (b'SEQUENTIAL\n0;+331;"\xff\xfeRaw" <sip:+331@127.0.0.1:5070>;1500;86400000\n')
    for bad in (CallPlan("+331", name="Client'; DROP"), CallPlan("+33\n1")):
        with pytest.raises(ValueError, match="holds"):
            injection_file(tmp_path / "bad.csv", [bad], 5070)
    assert rate_args(7.5) == ("-r", "15", "-rp", "2000")
    assert numbered(7) == "+33199000007"


@needs_sipp
def test_sipp_times_follow_its_zone_and_the_local_default(tmp_path: Path) -> None:
    """sipp prints localtime(3): with TZ set, the zone must be given; zone=None reads a
    trace of a sipp that ran in this machine's own zone."""
    for tz, zone in (("Asia/Kolkata", ZoneInfo("Asia/Kolkata")), (None, None)):
        before = datetime.now(UTC)
        messages = _builtin_call(tmp_path / (tz or "local").replace("/", "-"), tz)
        after = datetime.now(UTC)
        (leg,) = caller_legs(parse_trace(messages.read_bytes(), zone))
        assert before <= leg.invite_at <= leg.ended_at <= after  # type: ignore[operator]


def _builtin_call(work: Path, tz: str | None) -> Path:
    work.mkdir()
    env = dict(os.environ, **({"TZ": tz} if tz else {}))
    port = free_port(socket.SOCK_DGRAM)
    common = ["-i", "127.0.0.1", "-m", "1", "-trace_msg", "-timeout", "20s", "-mp", "0"]
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-p", str(port), *common, "-bg"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uac = ["sipp", "-sn", "uac", "-p", str(free_port(socket.SOCK_DGRAM)), *common]
    subprocess.run(
        [*uac, "-s", "1", f"127.0.0.1:{port}"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    uas.wait(10)
    (trace,) = work.glob("uac_*_messages.log")
    return trace


@needs_sipp
def test_crowd_and_phone_play_every_plan_and_the_wire_says_so(tmp_path: Path) -> None:
    port = free_port(socket.SOCK_DGRAM)
    phone = start_agent_phone(
        tmp_path,
        "phone",
        agent_phone_scenario("accept", ring_ms=800, dtmf_after_ms=700),
        port=port,
    )
    plans = [
        CallPlan(numbered(0), hang_up_after_answer_ms=400),
        CallPlan(numbered(1), hang_up_after_invite_ms=300),  # gives up while it rings
        CallPlan(
            numbered(2), raw_from=b'"\xff\xfe" <sip:%FF%FE@127.0.0.1>', hang_up_after_answer_ms=1500
        ),
        CallPlan(numbered(3), hang_up_after_invite_ms=2000, hang_up_after_answer_ms=9000),
    ]
    before = datetime.now(UTC)
    crowd = start_callers(
        tmp_path,
        plans,
        target=f"127.0.0.1:{port}",
        did="+33610000001",
        rate=5,
        speech=None,
        timeout_s=30,
    )
    try:  # the traces are live: a test can wait for a moment of a call instead of sleeping
        pressed_legs = phone.wait_for_wire(
            lambda legs: any(leg.dtmf_at for leg in legs), timeout=20, what="a key press"
        )
        assert any(leg.dtmf == "1" for leg in pressed_legs)
        crowd.finish(40)
    finally:
        assert phone.stop() == 0, phone.run.output()
    callers, agents = crowd.wire(), phone.wire()
    assert before <= callers[0].invite_at
    by_number = {leg.number: leg for leg in callers}
    assert list(by_number) == [numbered(0), numbered(1), "%FF%FE", numbered(3)]

    talk = by_number[numbered(0)]
    assert talk.final_status == 200 and talk.bye_by == "caller"
    assert _ms(talk.bye_at - talk.final_at) == pytest.approx(400, abs=SLACK_MS)  # type: ignore[operator]

    gave_up = by_number[numbered(1)]
    assert gave_up.cancel_at is not None and gave_up.final_status == 487
    assert _ms(gave_up.cancel_at - gave_up.invite_at) == pytest.approx(300, abs=SLACK_MS)
    assert gave_up.ended_at == gave_up.cancel_at and gave_up.ended_by == "caller"

    raw = by_number["%FF%FE"]
    assert raw.display_name.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    # Whichever deadline comes first: 2 s after the INVITE, before 9 s of talk.
    last = by_number[numbered(3)]
    assert _ms(last.bye_at - last.invite_at) == pytest.approx(2000, abs=SLACK_MS)  # type: ignore[operator]

    legs = {leg.call_id: leg for leg in agents}
    assert set(legs) == {leg.call_id for leg in callers}  # sipp to sipp: same Call-IDs
    assert legs[gave_up.call_id].cancel_at is not None
    assert legs[gave_up.call_id].final_status == 487 and legs[gave_up.call_id].dtmf is None
    pressed = legs[raw.call_id]
    assert pressed.dtmf == "1" and pressed.bye_by == "pbx"
    assert _ms(pressed.dtmf_at - pressed.answered_at) == pytest.approx(700, abs=SLACK_MS)  # type: ignore[operator]
    assert pressed.accepted_at == pressed.dtmf_at
    assert legs[talk.call_id].dtmf is None  # the caller left before the key


def _ms(delta: timedelta) -> float:
    return delta.total_seconds() * 1000


def test_agent_legs_need_an_invite_received() -> None:
    assert agent_legs([]) == [] and caller_legs([]) == []


def test_wait_until_returns_the_first_truthy_value_or_says_what_never_came() -> None:
    values = iter([0, None, 7])
    assert wait_until(lambda: next(values), timeout=5, what="a seven", every=0.01) == 7
    with pytest.raises(AssertionError, match=r"no answered call within 0\.05 s"):
        wait_until(lambda: [], timeout=0.05, what="answered call", every=0.01)


@needs_sipp
@pytest.mark.parametrize(
    ("behaviour", "talk_ms", "final", "ended_by"),
    [
        ("busy", None, 486, "pbx"),
        ("reject", None, 603, "pbx"),
        ("noanswer", None, 487, "caller"),  # the caller gives up: CANCEL
        ("silent", None, 200, "caller"),
        ("accept", 600, 200, "pbx"),  # the agent hangs up first
    ],
)
def test_every_phone_behaviour_serves_concurrent_calls(
    tmp_path: Path, behaviour: str, talk_ms: int | None, final: int, ended_by: str
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    scenario = agent_phone_scenario(behaviour, ring_ms=200, dtmf_after_ms=200, talk_ms=talk_ms)
    phone = start_agent_phone(tmp_path, "phone", scenario, port=port)
    plans = [CallPlan(numbered(i), hang_up_after_invite_ms=2500) for i in range(3)]
    crowd = start_callers(
        tmp_path, plans, target=f"127.0.0.1:{port}", did="+3361", rate=20, speech=None
    )
    try:
        crowd.finish(30)
    finally:
        assert phone.stop() == 0, phone.run.output()
    callers, agents = crowd.wire(), phone.wire()
    assert [(leg.final_status, leg.ended_by) for leg in callers] == [(final, ended_by)] * 3
    assert [leg.final_status for leg in agents] == [final] * 3
    assert all(leg.ended_at is not None for leg in callers + agents)  # type: ignore[operator]
