"""Every call sipp placed is in the trail exactly once, with its true outcome and
times (within 1 s of the wire), whatever fails: the service frozen, killed and
restarted, cut from ARI, a burst with callers giving up, a full recordings disk,
the database down when the service starts.

Each test places its calls with the fault rig (tests/rig): one sipp for the
callers (one caller number per call), one sipp per agent's mobile, and compares
what sipp saw on the wire with the audit trail (tests/rig/trail_check.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import get_call, list_calls
from tests.e2e import fault_scenarios
from tests.e2e.rig import (
    LINE_FULL,
    LINE_SHORT,
    P1,
    SUP,
    E2ERig,
    ServiceProcess,
    e2e_config,
    sqlite_service,
)
from tests.rig.crowd import CallPlan
from tests.rig.faults import TcpProxy, full_disk
from tests.rig.polling import wait_until
from tests.rig.postgres import stoppable_postgres
from tests.rig.trail_check import Expect, assert_trail_matches_wire
from tests.rig.wire import AgentLeg, CallerLeg

pytestmark = pytest.mark.e2e


def test_callers_who_hang_up_while_the_service_is_frozen_are_on_record(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    """Frozen (SIGSTOP, websocket open): three callers give up after 2 s, before the
    dialplan's 5 s watchdog; a fourth stays and the watchdog hands it to the fallback,
    where the agent accepts. After the thaw: four calls, each once, true times."""
    run = fault_scenarios.frozen(e2e_rig, restartable, early=3)
    run.check.verify()
    assert run.figures["frozen_s"] > 4


def test_callers_whose_arrival_no_service_ever_read_are_on_record(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    """Frozen, two callers arrive and leave before the watchdog, then kill -9: their
    StasisStart died unread with the process. The dialplan records such unclaimed
    calls itself; after the restart both are on record, abandoned, true times."""
    run = fault_scenarios.killed_while_frozen(e2e_rig, restartable, leaving=2)
    run.check.verify()
    assert run.figures["unclaimed"] == 2, run.figures


@pytest.mark.parametrize("fault", ["frozen", "killed"])
def test_a_caller_who_leaves_during_early_dial_while_the_service_is_away(
    e2e_rig: E2ERig, restartable: ServiceProcess, fault: str
) -> None:
    """Early dial rings p1 during the announcement; the service freezes or is killed,
    and the caller hangs up. Afterwards: p1's phone stops ringing before she answers,
    and the call is on record once, abandoned, with its true end."""
    run = fault_scenarios.early_dial_fault(e2e_rig, restartable, fault)
    run.check.verify()
    assert run.figures["frozen_s"] > 1
    assert run.figures["agent_legs"] == 1 and run.figures["agent_answered"] == 0, run.figures
    assert run.figures["agent_cancelled"] == 1, run.figures  # CANCEL, not left to time out


def test_calls_that_end_while_the_service_is_down_end_with_their_true_times(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    """kill -9 with two conversations and one caller in the announcement. During the
    downtime one talker and the waiting caller hang up, a new caller is taken by the
    fallback. After the restart: the agent left alone in a bridge is released at
    once, the other conversation is re-attached, and every call ends on record."""
    run = fault_scenarios.killed(e2e_rig, restartable)
    run.check.verify()
    released = run.figures.get("agent_alone_released_after_restart_s")
    assert released is not None, "the agent left alone in a bridge must be hung up"
    assert released < 3.0, run.figures


def test_a_5s_ari_cut_loses_no_call_and_no_key(
    e2e_rig: E2ERig, proxy: TcpProxy, proxied: ServiceProcess
) -> None:
    """ARI cut for 5 s (TCP proxy) just as an agent answers: the agent's '1' during the
    cut is lost, so the prompt is replayed and the second '1' accepts; two callers
    whose announcement ended during the cut are taken on at once after it."""
    run = fault_scenarios.ari_cut(e2e_rig, proxy, proxied, cut_s=5.0, later=2)
    run.check.verify()
    assert run.figures["key_lost_in_cut"] == 1.0, run.figures
    assert run.figures["rung_after_cut"] == 2.0, run.figures
    # Rung once ARI was back, not after the 120 s cap of the announcement's playback.
    assert run.figures["slowest_ring_after_restore_s"] < 2.5, run.figures


@pytest.mark.load
def test_300_calls_at_10_per_second_with_30_percent_leaving_early(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    run = fault_scenarios.burst(e2e_rig, restartable, calls=300, rate=10.0, early=0.3)
    assert run.placed == 300
    run.check.verify()
    assert run.figures["unclaimed"] == 0, run.figures  # the service took every call


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
                sip_port=e2e_rig.pbx.sip_port,
            )
        )
        proc = ServiceProcess(config, pg.url, tmp_path / "rec", tmp_path / "service.log")
        first = ServiceProcess(config, pg.url, tmp_path / "rec", tmp_path / "first.log")
        first.start()  # migrates; then a clean stop, and the database goes down
        assert first.stop() == 0
        pg.stop()
        since = datetime.now(UTC)
        proc.start(migrate=False)
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


def test_a_full_pbx_spool_is_not_recorded_as_no_message_left(
    e2e_rig: E2ERig, restartable: ServiceProcess
) -> None:
    """Asterisk's own recording spool is full: the caller spoke but nothing could be
    written. That is a failure of the PBX, said so, never "voicemail_empty"."""
    busy = [e2e_rig.agent_phone(number, "busy") for number in (P1, SUP)]
    with full_disk(e2e_rig.pbx.recordings_dir, size_kb=64):
        crowd = e2e_rig.callers(
            LINE_SHORT, [CallPlan("+33198600002", hang_up_after_answer_ms=26000)]
        )
        try:
            crowd.finish(40)
        finally:
            for phone in busy:
                phone.stop()
        assert restartable.engine is not None
        check = assert_trail_matches_wire(
            restartable.engine, crowd.wire(), Expect.one_of("failed"), did=LINE_SHORT, timeout=30
        )
    call = get_call(
        restartable.engine, list_calls(restartable.engine, did=LINE_SHORT, limit=1)[0].id
    )
    assert call is not None and "could not record" in (call.outcome_detail or ""), call
    assert check.mismatches == []
