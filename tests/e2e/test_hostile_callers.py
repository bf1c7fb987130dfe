"""Caller input is untrusted: hostile caller IDs, DTMF floods, repeated calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from astreinte_ari.adapters.store.safe_text import unescape
from tests.e2e.rig import LINE_FULL, P1, P2, E2ERig, ServiceProcess, now_utc, sqlite_service
from tests.rig.sipp import caller_scenario, sipp_media_port, start_sipp

pytestmark = pytest.mark.e2e

HOSTILE_NAME = "'; DROP TABLE calls;-- $(reboot) `id` é ü 中文 " + "A" * 500
HOSTILE_NUMBER = "+331'$(id)"


@pytest.fixture
def strict_service(e2e_rig: E2ERig, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The e2e configuration with a strict caller rate limit: one call per 10 minutes,
    nobody rung past it (tests/e2e/test_routing.py: one every 3 minutes still rung)."""
    with sqlite_service(e2e_rig, tmp_path, rate_limit=1, still_ring_every=None) as proc:
        yield proc


def _hostile_call(rig: E2ERig, hold_ms: int, flood: int = 0) -> object:
    import socket

    from astreinte_ari.devtools.localpbx import free_port

    run = start_sipp(
        rig.workdir / "sipp",
        "hostile",
        caller_scenario(
            number=HOSTILE_NUMBER, name=HOSTILE_NAME, hold_ms=hold_ms, speech=None, dtmf_flood=flood
        ),
        local_port=free_port(socket.SOCK_DGRAM),
        media_port=sipp_media_port(),
        remote=f"127.0.0.1:{rig.pbx.sip_port}",
        service=LINE_FULL,
    )
    rig.runs.append(run)
    return run


def test_hostile_caller_id_and_dtmf_flood_are_inert(
    e2e_rig: E2ERig, strict_service: ServiceProcess
) -> None:
    since = now_utc()
    # The first agent answers but never presses a key; the caller floods '1'.
    silent = e2e_rig.phone(P1, e2e_rig.agent("silent"))
    second = e2e_rig.phone(P2, e2e_rig.agent("accept"))
    caller = _hostile_call(e2e_rig, hold_ms=26000, flood=40)
    for run in (caller, silent, second):
        assert run.wait(90) == 0, run.output()  # type: ignore[attr-defined]
    call = strict_service.wait_for_call(since, LINE_FULL)
    # The caller's keys never accept a call on the agent's behalf.
    assert [(h.person_id, h.outcome) for h in call.hops] == [
        ("p1", "not_accepted"),
        ("p2", "accepted"),
    ]
    assert call.hops[0].dtmf is None
    # Stored bounded, escaped, never interpreted; the table is still there.
    assert len(call.caller_name) <= 256
    assert unescape(call.caller_name).startswith("'; DROP TABLE calls;-- $(reboot)")
    assert "\x00" not in call.caller_name
    assert call.caller_number.startswith("+331'")
    assert strict_service.engine is not None
    assert "calls" in inspect(strict_service.engine).get_table_names()
    assert "Traceback" not in strict_service.log_path.read_text()


def test_repeated_calls_get_voicemail_not_a_new_cascade(
    e2e_rig: E2ERig, strict_service: ServiceProcess
) -> None:
    first_since = now_utc()
    ringing = e2e_rig.phone(P1, e2e_rig.agent("noanswer"))
    first = e2e_rig.call(LINE_FULL, hold_ms=9000, caller="+33199000777")
    assert first.wait(60) == 0 and ringing.wait(30) == 0
    assert strict_service.wait_for_call(first_since, LINE_FULL).hops  # rang someone
    since = now_utc()
    # Same number again within the window: announcement, then voicemail; nobody rung.
    again = e2e_rig.call(LINE_FULL, hold_ms=22000, caller="+33199000777")
    assert again.wait(60) == 0, again.output()
    call = strict_service.wait_for_call(since, LINE_FULL)
    assert call.hops == ()
    assert any("caller rate limit" in t.reason for t in call.transitions)
    assert [t.to_state for t in call.transitions][:2] == ["announcing", "voicemail_greeting"]
