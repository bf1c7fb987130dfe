"""A burst (an outage elsewhere makes every customer call at once): calls beyond
the cascade limit wait on hold with a "please hold" announcement, none fails."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from astreinte_ari.devtools.localpbx import free_port
from tests.e2e.rig import LINE_SHORT, P1, E2ERig, ServiceProcess, now_utc, sqlite_service
from tests.rig.sipp import caller_scenario, sipp_media_port, start_sipp

pytestmark = pytest.mark.e2e
BURST = 6
SLOTS = 2


@pytest.fixture
def two_slot_service(e2e_rig: E2ERig, tmp_path: Path) -> Iterator[ServiceProcess]:
    with sqlite_service(e2e_rig, tmp_path, max_parallel=SLOTS) as proc:
        yield proc


def test_burst_of_calls_waits_on_hold_and_every_call_is_taken(
    e2e_rig: E2ERig, two_slot_service: ServiceProcess, tmp_path: Path
) -> None:
    since = now_utc()
    agent = start_sipp(
        tmp_path / "sipp",
        "agent",
        e2e_rig.agent("accept", dtmf_after_ms=800),
        local_port=e2e_rig.mobile_ports[P1],
        media_port=sipp_media_port(),
        calls=BURST,
        concurrency=BURST,
    )
    callers = start_sipp(
        tmp_path / "sipp", "burst",
        caller_scenario(number="+3319700[call_number]", name="Burst", hold_ms=50000,
                        speech=None),
        local_port=free_port(socket.SOCK_DGRAM), media_port=sipp_media_port(),
        remote=f"127.0.0.1:{e2e_rig.pbx.sip_port}", service=LINE_SHORT, calls=BURST,
        concurrency=BURST, extra_args=("-r", "20"),
    )  # fmt: skip
    assert callers.wait(120) == 0, callers.output()  # no call failed
    assert agent.wait(30) == 0, agent.output()
    from astreinte_ari.adapters.store.queries import get_call, list_calls

    assert two_slot_service.engine is not None
    summaries = list_calls(two_slot_service.engine, since=since, did=LINE_SHORT, limit=50)
    assert len(summaries) == BURST
    calls = [get_call(two_slot_service.engine, s.id) for s in summaries]
    assert all(c is not None and c.outcome == "accepted" for c in calls), [
        (c.outcome, c.outcome_detail) for c in calls if c is not None
    ]
    queued = [c for c in calls if c is not None and "queued" in [t.to_state for t in c.transitions]]
    assert len(queued) >= BURST - SLOTS - 1, len(queued)  # the rest waited on hold
