"""Every call sipp placed is in the trail exactly once, with its true outcome and
times (within 1 s of the wire), whatever fails: the service frozen, killed and
restarted, cut from ARI, a burst with callers giving up, a full recordings disk,
the database down when the service starts.

Each test places its calls with the fault rig (tests/rig): one sipp for the
callers (one caller number per call), one sipp per agent's mobile, and compares
what sipp saw on the wire with the audit trail (tests/rig/trail_check.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import get_call, list_calls
from tests.e2e.rig import (
    ARI_PASSWORD,
    LINE_FULL,
    LINE_SHORT,
    P1,
    SUP,
    E2ERig,
    ServiceProcess,
    e2e_config,
    sqlite_service,
)
from tests.rig.crowd import CallPlan, numbered
from tests.rig.faults import TcpProxy, crashed, freeze, full_disk
from tests.rig.polling import wait_until
from tests.rig.postgres import stoppable_postgres
from tests.rig.trail_check import Expect, assert_trail_matches_wire
from tests.rig.wire import AgentLeg, CallerLeg

pytestmark = pytest.mark.e2e


def _ended(count: int) -> object:
    return lambda legs: sum(1 for leg in legs if leg.ended_at is not None) >= count


def test_callers_who_hang_up_while_the_service_is_frozen_are_on_record(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    """Frozen (SIGSTOP, websocket open): three callers give up after 2 s, before the
    dialplan's 5 s watchdog; a fourth stays and the watchdog hands it to the fallback,
    where the agent accepts. After the thaw: four calls, each once, true times."""
    phone = e2e_rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
    early = [CallPlan(numbered(i, "+3319820"), hang_up_after_invite_ms=2000) for i in range(3)]
    stays = CallPlan("+33198209999", hang_up_after_answer_ms=14000)
    assert restartable.process is not None
    with freeze(restartable.process.pid) as frozen:
        crowd = e2e_rig.callers(LINE_FULL, [*early, stays], rate=2)
        crowd.wait_for_wire(_ended(3), timeout=20, what="the early callers hung up")
        phone.wait_for_wire(lambda legs: bool(legs), timeout=20, what="fallback rings p1")
    assert frozen.seconds is not None and frozen.seconds > 4
    try:
        crowd.finish(40)
    finally:
        assert phone.stop() == 0, phone.run.output()
    expect = {p.number: Expect.abandoned("received") for p in early}
    expect[stays.number] = Expect.accepted("p1")
    assert restartable.engine is not None
    assert_trail_matches_wire(
        restartable.engine, crowd.wire(), expect, agents=phone.wire(), did=LINE_FULL, timeout=30
    )


def test_calls_that_end_while_the_service_is_down_end_with_their_true_times(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    """kill -9 with two conversations and one caller in the announcement. During the
    downtime one talker and the waiting caller hang up, a new caller is taken by the
    fallback. After the restart: the agent left alone in a bridge is released at
    once, the other conversation is re-attached, and every call ends on record."""
    phone = e2e_rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
    talks = [
        CallPlan("+33198300001", hang_up_after_answer_ms=12000),  # leaves while down
        CallPlan("+33198300002", hang_up_after_answer_ms=24000),  # talks past the restart
    ]
    first = e2e_rig.callers(LINE_FULL, talks, rate=2)
    phone.wait_for_wire(
        lambda legs: sum(1 for leg in legs if leg.dtmf_at) >= 2, timeout=30, what="both bridged"
    )
    waiting = CallPlan("+33198300003", hang_up_after_invite_ms=3500)
    second = e2e_rig.callers(LINE_FULL, [waiting], rate=1)
    second.wait_for_wire(lambda legs: bool(legs), timeout=10, what="third caller in")
    during = CallPlan("+33198300004", hang_up_after_answer_ms=12000)
    with crashed(restartable) as down:
        third = e2e_rig.callers(LINE_FULL, [during], rate=1)  # Stasis fails: the fallback
        first.wait_for_wire(_ended(1), timeout=20, what="a talker hung up while down")
        second.wait_for_wire(_ended(1), timeout=20, what="the waiting caller hung up")
    assert down.seconds is not None
    try:
        for crowd in (first, second, third):
            crowd.finish(60)
    finally:
        assert phone.stop() == 0, phone.run.output()
    legs = phone.wire()
    alone = [
        leg for leg in legs if leg.bye_by == "pbx" and leg.bye_at and leg.bye_at > down.began_at
    ]
    assert alone, "the agent left alone in a bridge is hung up by the restarted service"
    released = min(leg.bye_at for leg in alone if leg.bye_at)
    assert down.ended_at is not None
    assert released - down.ended_at < timedelta(seconds=3), (released, down.ended_at)
    expect = {
        talks[0].number: Expect.accepted("p1"),
        talks[1].number: Expect.accepted("p1"),
        waiting.number: Expect.abandoned("announcing"),
        during.number: Expect.accepted("p1"),
    }
    callers = first.wire() + second.wire() + third.wire()
    assert restartable.engine is not None
    assert_trail_matches_wire(
        restartable.engine, callers, expect, agents=legs, did=LINE_FULL, timeout=40
    )


@pytest.fixture
def proxy(e2e_rig: E2ERig) -> Iterator[TcpProxy]:
    with TcpProxy(e2e_rig.pbx.http_port) as proxy:
        yield proxy


@pytest.fixture
def proxied(e2e_rig: E2ERig, proxy: TcpProxy, tmp_path: Path) -> Iterator[ServiceProcess]:
    with sqlite_service(e2e_rig, tmp_path, ari_url=proxy.url) as proc:
        yield proc


def test_a_5s_ari_cut_loses_no_call_and_no_key(
    e2e_rig: E2ERig, proxy: TcpProxy, proxied: ServiceProcess
) -> None:
    """ARI cut for 5 s (TCP proxy) just as an agent answers: the agent's '1' during the
    cut is lost, so the prompt is replayed and the second '1' accepts; two callers
    whose announcement ended during the cut are taken on at once after it."""
    phone = e2e_rig.agent_phone(
        P1, "accept", ring_ms=300, dtmf_after_ms=1500, press_again_after_ms=7000
    )
    first = e2e_rig.callers(LINE_FULL, [CallPlan("+33198400001", hang_up_after_answer_ms=30000)])
    # Three seconds later: their announcement (6.7 s) ends inside the cut.
    time_of_first = first.wait_for_wire(lambda legs: bool(legs), timeout=10, what="first in")
    wait_until(
        lambda: time.time() - time_of_first[0].invite_at.timestamp() > 3,
        timeout=10,
        what="3 s after the first caller",
        every=0.05,
    )
    later = [CallPlan(numbered(i, "+3319841"), hang_up_after_answer_ms=25000) for i in range(2)]
    second = e2e_rig.callers(LINE_FULL, later, rate=2)
    phone.wait_for_wire(
        lambda legs: any(leg.answered_at for leg in legs), timeout=20, what="first agent answered"
    )
    with proxy.outage() as outage:
        phone.wait_for_wire(
            lambda legs: any(leg.dtmf_at for leg in legs), timeout=10, what="key during the cut"
        )
        wait_until(lambda: time.monotonic() - outage.cut_mono >= 5.0, timeout=10, what="5 s")
    assert outage.restored_at is not None
    try:
        for crowd in (first, second):
            crowd.finish(60)
    finally:
        assert phone.stop() == 0, phone.run.output()
    legs = phone.wire()
    assert legs[0].dtmf_at is not None and legs[0].dtmf_at < outage.restored_at
    later_legs = [leg for leg in legs[1:] if leg.invite_at > outage.cut_at]
    assert len(later_legs) == 2, [leg.describe() for leg in legs]
    for leg in later_legs:  # rung once ARI was back, not after the 120 s playback cap
        assert leg.invite_at - outage.restored_at < timedelta(seconds=2.5), leg.describe()
    expect = Expect.accepted("p1")
    assert proxied.engine is not None
    assert_trail_matches_wire(
        proxied.engine, first.wire() + second.wire(), expect, agents=legs, did=LINE_FULL
    )


@pytest.mark.load
def test_300_calls_at_10_per_second_with_30_percent_leaving_early(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    phone = e2e_rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
    plans = [
        CallPlan(numbered(i, "+3319850"), hang_up_after_invite_ms=1000 + (i * 37) % 1000)
        if i % 10 < 3
        else CallPlan(numbered(i, "+3319850"), hang_up_after_answer_ms=11000)
        for i in range(300)
    ]
    crowd = e2e_rig.callers(LINE_FULL, plans, rate=10, timeout_s=180)
    try:
        crowd.finish(150)
    finally:
        assert phone.stop(60) == 0, phone.run.output()
    expect = {
        p.number: Expect.abandoned() if p.hang_up_after_invite_ms else Expect.accepted("p1")
        for p in plans
    }
    callers = crowd.wire()
    assert len(callers) == 300
    assert restartable.engine is not None
    assert_trail_matches_wire(
        restartable.engine, callers, expect, agents=phone.wire(), did=LINE_FULL, timeout=90
    )


def test_a_full_recordings_disk_keeps_the_message_and_the_trail_points_to_it(
    e2e_rig: E2ERig, tmp_path: Path
) -> None:
    recordings = tmp_path / "rec"
    recordings.mkdir()
    with full_disk(recordings, size_kb=256) as disk, sqlite_service(e2e_rig, tmp_path) as svc:
        busy = [e2e_rig.agent_phone(number, "busy") for number in (P1, SUP)]
        crowd = e2e_rig.callers(
            LINE_SHORT, [CallPlan("+33198600001", hang_up_after_answer_ms=26000)]
        )
        try:
            crowd.finish(40)
        finally:
            for phone in busy:
                phone.stop()
        assert svc.engine is not None
        assert_trail_matches_wire(
            svc.engine, crowd.wire(), Expect.one_of("voicemail"), did=LINE_SHORT, timeout=30
        )
        call = get_call(svc.engine, list_calls(svc.engine, did=LINE_SHORT, limit=1)[0].id)
        assert call is not None and call.voicemail_path is not None
        assert "kept on the PBX" in (call.outcome_detail or ""), call.outcome_detail
        assert not Path(call.voicemail_path).exists()
        disk.make_room()  # the admin frees space: the message is moved where the trail says
        wait_until(
            lambda: Path(call.voicemail_path or "").exists(),
            timeout=30,
            what="voicemail moved from the PBX",
        )
        assert Path(call.voicemail_path).stat().st_size > 16000  # seconds of real speech


def _start_without_upgrade(proc: ServiceProcess, timeout: float = 30.0) -> None:
    """ServiceProcess.start() migrates first, which needs the database."""
    env = dict(os.environ, ASTREINTE_ARI_PASSWORD=ARI_PASSWORD)
    with open(proc.log_path, "ab") as log:
        proc.process = subprocess.Popen(
            [sys.executable, "-m", "astreinte_ari", "run", "-c", str(proc.config_path)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_until(
        lambda: "astreinte ready" in proc.log_path.read_text(errors="replace"),
        timeout=timeout,
        what="service ready with the database down",
    )


@pytest.mark.postgres
def test_the_service_starts_and_takes_calls_with_the_database_down(
    e2e_rig: E2ERig, tmp_path: Path
) -> None:
    with stoppable_postgres(tmp_path / "pg") as pg:
        config = tmp_path / "astreinte.yaml"
        config.write_text(
            e2e_config(
                ari_url=e2e_rig.pbx.ari_url,
                db_url=pg.url,
                recordings=tmp_path / "rec",
                cel_file=e2e_rig.pbx.cel_file,
            )
        )
        proc = ServiceProcess(config, pg.url, tmp_path / "rec", tmp_path / "service.log")
        first = ServiceProcess(config, pg.url, tmp_path / "rec", tmp_path / "first.log")
        first.start()  # migrates; then a clean stop, and the database goes down
        assert first.stop() == 0
        pg.stop()
        since = datetime.now(UTC)
        _start_without_upgrade(proc)
        try:
            assert "unreachable" in proc.log_path.read_text()
            phone = e2e_rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
            plans = [
                CallPlan("+33198700001", hang_up_after_answer_ms=11000),
                CallPlan("+33198700002", hang_up_after_invite_ms=2500),
            ]
            crowd = e2e_rig.callers(LINE_FULL, plans, rate=2)
            try:
                crowd.finish(40)
            finally:
                assert phone.stop() == 0, phone.run.output()
            pg.start()
            engine = create_db_engine(pg.url)
            try:
                expect = {
                    plans[0].number: Expect.accepted("p1"),
                    plans[1].number: Expect.abandoned("announcing"),
                }
                callers: list[CallerLeg] = crowd.wire()
                agents: list[AgentLeg] = phone.wire()
                assert_trail_matches_wire(
                    engine, callers, expect, agents=agents, did=LINE_FULL, timeout=40
                )
                assert len(list_calls(engine, since=since, did=LINE_FULL)) == 2
            finally:
                engine.dispose()
        finally:
            code = proc.stop()
            e2e_rig.cleanup()
        assert code == 0, proc.log_tail()
