"""The dialplan fallback with the service DOWN: real Asterisk, the real AGI, sipp phones.

No `astreinte run` here: Stasis() fails at once and [astreinte-fallback] runs
the pyst2 AGI, which rings the cascade itself. Then the spool is imported into
a fresh audit database and checked.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from astreinte_ari.adapters.ari.client import AriClient
from astreinte_ari.adapters.fallback.importer import import_fallback_spool
from astreinte_ari.adapters.fallback.lastresort import (
    publish_last_resort,
    publish_spool_dir,
)
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.queries import CallDetail, get_call, list_calls
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.config.loader import load_config
from astreinte_ari.localpbx import LocalAsterisk, free_port
from tests.e2e.rig import (
    ARI_PASSWORD,
    LINE_FULL,
    LINE_SHORT,
    P1,
    P2,
    SUP,
    E2ERig,
    ServiceProcess,
    e2e_config,
    make_speech,
    now_utc,
    sipp_available,
)
from tests.rig.sipp import SippRun, agent_scenario, caller_scenario, start_sipp

pytestmark = pytest.mark.e2e


@dataclass
class FallbackRig:
    rig: E2ERig
    config_path: Path
    spool: Path
    db_url: str

    def call(self, did: str, hold_ms: int = 6000) -> SippRun:
        run = start_sipp(
            self.rig.workdir / "sipp",
            f"fbcaller-{did[-1]}-{time.monotonic_ns()}",
            caller_scenario(
                number="+33199000001",
                name="Client'; DROP TABLE calls;--",
                hold_ms=hold_ms,
                speech=self.rig.speech,
            ),
            local_port=free_port(socket.SOCK_DGRAM),
            media_port=_even_port(),
            remote=f"127.0.0.1:{self.rig.pbx.sip_port}",
            service=did,
            extra_args=("-trace_msg",),
        )
        self.rig.runs.append(run)
        return run

    def phone(self, number: str, xml: str) -> SippRun:
        run = start_sipp(
            self.rig.workdir / "sipp",
            f"fbm{number[1:]}-{time.monotonic_ns()}",
            xml,
            local_port=self.rig.mobile_ports[number],
            media_port=_even_port(),
            extra_args=("-trace_msg",),
        )
        self.rig.runs.append(run)
        return run

    def import_spool(self) -> int:
        engine = create_db_engine(self.db_url)
        writer = AuditWriter(engine)
        try:
            return import_fallback_spool(load_config(self.config_path), writer)
        finally:
            writer.close()
            engine.dispose()


def _even_port() -> int:
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        if port % 2 == 0 and port < 65000:
            return port
    raise RuntimeError("no free even UDP port")


@pytest.fixture(scope="module")
def fallback_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FallbackRig]:
    if not sipp_available():
        pytest.fail("sipp/asterisk/espeak-ng/sox missing: run scripts/install-system-deps.sh")
    work = tmp_path_factory.mktemp("fallback")
    spool = work / "spool"
    db_url = f"sqlite:///{work / 'audit.db'}"
    config_path = work / "astreinte.yaml"
    ports = {number: free_port(socket.SOCK_DGRAM) for number in (P1, P2, SUP)}
    pbx = LocalAsterisk(
        work / "asterisk",
        ari_password=ARI_PASSWORD,
        mobiles=ports,
        # A short watchdog: the service-down tests below (calls of 5-7 s) then also
        # prove that the fallback disarms it for its own cascade.
        dialplan_globals={"ASTREINTE_CONFIG": str(config_path), "ASTREINTE_WATCHDOG": "2"},
    )
    config_path.write_text(
        e2e_config(ari_url=pbx.ari_url, db_url=db_url, recordings=work / "recordings")
        + f'fallback: {{spool_dir: "{spool}"}}\n'
    )
    upgrade(db_url)
    pbx.start()
    rig = E2ERig(work, pbx, ports, make_speech(work / "speech.ul"))
    try:
        yield FallbackRig(rig, config_path, spool, db_url)
    finally:
        rig.cleanup()
        pbx.stop()


@pytest.fixture
def fb(fallback_rig: FallbackRig) -> Iterator[FallbackRig]:
    yield fallback_rig
    fallback_rig.rig.cleanup()


_TRACE_TS = re.compile(r"^-+ (\d{4}-\d\d-\d\d)[ \t](\d\d:\d\d:\d\d\.\d+)", re.M)


def _first_invite_time(run: SippRun, *, sent: bool) -> float:
    """Wall-clock time of the first INVITE sent (caller) / received (agent), from -trace_msg."""
    logs = sorted(run.log_path.parent.glob(f"{run.name}_*_messages.log"))
    assert logs, f"no sipp message trace for {run.name}"
    text = logs[0].read_text(errors="replace")
    direction = "sent" if sent else "received"
    for block in re.split(r"\n(?=-{10,} )", text):
        m = _TRACE_TS.match(block)
        if m and f"message {direction}" in block and re.search(r"^\s*INVITE sip:", block, re.M):
            return datetime.fromisoformat(f"{m.group(1)} {m.group(2)}").timestamp()
    raise AssertionError(f"no INVITE {direction} in {logs[0]}:\n{text[:2000]}")


def _imported_call(fb: FallbackRig, did: str) -> CallDetail:
    assert fb.import_spool() == 1
    assert fb.import_spool() == 0  # idempotent: nothing left, nothing written twice
    engine = create_db_engine(fb.db_url)
    try:
        calls = list_calls(engine, did=did, limit=50)
        detail = get_call(engine, calls[0].id)
    finally:
        engine.dispose()
    assert detail is not None
    assert not list(fb.spool.glob("*.json*")), "imported files must be moved aside"
    return detail


@pytest.mark.smoke
def test_service_down_agent_presses_1_and_is_connected(fb: FallbackRig) -> None:
    agent = fb.phone(P1, agent_scenario("accept", ring_ms=300, dtmf_after_ms=1500))
    caller = fb.call(LINE_FULL, hold_ms=7000)
    assert caller.wait(30) == 0, caller.output()
    assert agent.wait(10) == 0, agent.output()
    delay = _first_invite_time(agent, sent=False) - _first_invite_time(caller, sent=True)
    print(f"\nring delay (caller INVITE -> agent INVITE, service down): {delay * 1000:.0f} ms")
    assert delay < 1.0
    detail = _imported_call(fb, LINE_FULL)
    assert detail.outcome == "accepted", detail
    assert detail.caller_name == "Client'; DROP TABLE calls;--"
    assert [(h.person_id, h.outcome, h.dtmf) for h in detail.hops] == [("p1", "accepted", "1")]
    assert detail.hops[0].answered_at is not None and detail.hops[0].accepted_at is not None


def test_service_down_busy_agent_goes_to_next_hop(fb: FallbackRig) -> None:
    busy = fb.phone(P1, agent_scenario("busy"))
    agent = fb.phone(P2, agent_scenario("accept", ring_ms=300, dtmf_after_ms=1500))
    caller = fb.call(LINE_FULL, hold_ms=7000)
    assert caller.wait(30) == 0, caller.output()
    assert busy.wait(5) == 0, busy.output()
    assert agent.wait(10) == 0, agent.output()
    detail = _imported_call(fb, LINE_FULL)
    assert detail.outcome == "accepted"
    assert [(h.person_id, h.outcome) for h in detail.hops] == [("p1", "busy"), ("p2", "accepted")]
    assert detail.hops[0].cause_code == 17


def test_agi_broken_rings_last_resort_from_astdb(fb: FallbackRig) -> None:
    async def publish() -> None:
        async with AriClient(
            fb.rig.pbx.ari_url, fb.rig.pbx.ari_username, fb.rig.pbx.ari_password, "astreinte"
        ) as client:
            await publish_spool_dir(client, fb.spool)
            await publish_last_resort(client, LINE_SHORT, "PJSIP/" + P2)

    asyncio.run(publish())
    assert f"/astreinte/lastresort/{LINE_SHORT}" in fb.rig.pbx.cli("database show astreinte")
    good = load_config(fb.config_path)
    fb.rig.pbx.cli("dialplan set global ASTREINTE_CONFIG /nonexistent/astreinte.yaml")
    try:
        agent = fb.phone(P2, agent_scenario("silent", ring_ms=300))
        caller = fb.call(LINE_SHORT, hold_ms=5000)
        assert caller.wait(30) == 0, caller.output()
        assert agent.wait(10) == 0, agent.output()
    finally:
        fb.rig.pbx.cli(f"dialplan set global ASTREINTE_CONFIG {good.source_path}")
    detail = _imported_call(fb, LINE_SHORT)
    assert detail.outcome == "connected", detail
    assert "last resort" in (detail.outcome_detail or "")
    assert [(h.label, h.number, h.outcome) for h in detail.hops] == [
        ("last-resort", "PJSIP/" + P2, "connected")
    ]


@pytest.mark.smoke
def test_doctor_passes_then_names_each_fix(
    fb: FallbackRig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from astreinte_ari import cli

    monkeypatch.setenv("ASTREINTE_ARI_PASSWORD", fb.rig.pbx.ari_password)
    code = cli.main(["doctor", "-c", str(fb.config_path)])
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    assert "FAIL" not in out and "contexts loaded: astreinte-inbound" in out
    assert "ASTREINTE_CONFIG = " in out and "all checks passed" in out

    monkeypatch.setenv("ASTREINTE_ARI_PASSWORD", "wrong")
    assert cli.main(["doctor", "-c", str(fb.config_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  ARI" in out and "HTTP 401" in out and "fix: check [astreinte] in ari.conf" in out

    monkeypatch.setenv("ASTREINTE_ARI_PASSWORD", fb.rig.pbx.ari_password)
    fb.rig.pbx.cli("dialplan set global ASTREINTE_CONFIG /elsewhere.yaml")
    try:
        assert cli.main(["doctor", "-c", str(fb.config_path)]) == 1
    finally:
        fb.rig.pbx.cli(f"dialplan set global ASTREINTE_CONFIG {fb.config_path}")
    out = capsys.readouterr().out
    assert "FAIL  fallback config" in out and f"ASTREINTE_CONFIG = {fb.config_path}" in out


def test_frozen_service_watchdog_hands_the_call_to_the_fallback(
    fb: FallbackRig, tmp_path: Path
) -> None:
    """Connected but frozen (SIGSTOP): Stasis() succeeds and nobody answers the
    StasisStart; the dialplan's TIMEOUT(absolute) watchdog sends the caller to
    the fallback, and the thawed service does not record the call a second time."""
    service = ServiceProcess(fb.config_path, fb.db_url, tmp_path / "rec", tmp_path / "svc.log")
    service.start()
    since = now_utc()
    try:
        service.signal(signal.SIGSTOP)  # its websocket stays open: Asterisk sees it connected
        agent = fb.phone(P1, agent_scenario("accept", ring_ms=300, dtmf_after_ms=1500))
        caller = fb.call(LINE_FULL, hold_ms=8000)
        assert caller.wait(40) == 0, caller.output()
        assert agent.wait(10) == 0, agent.output()
        delay = _first_invite_time(agent, sent=False) - _first_invite_time(caller, sent=True)
        print(f"\nring delay with a frozen service (watchdog 2 s): {delay * 1000:.0f} ms")
        assert 2.0 <= delay < 4.0
        service.signal(signal.SIGCONT)
        deadline = time.monotonic() + 15
        while "already taken by the dialplan watchdog" not in service.log_tail():
            assert time.monotonic() < deadline, service.log_tail()
            time.sleep(0.2)
    finally:
        if service.process is not None:
            service.signal(signal.SIGCONT)
        service.stop()
    detail = _imported_call(fb, LINE_FULL)
    assert detail.started_at >= since
    assert detail.outcome == "accepted", detail
    assert [(h.person_id, h.outcome, h.dtmf) for h in detail.hops] == [("p1", "accepted", "1")]
    assert "did not take the call in time" in detail.transitions[0].reason
    engine = create_db_engine(fb.db_url)
    try:
        assert [c.id for c in list_calls(engine, since=since, did=LINE_FULL)] == [detail.id]
    finally:
        engine.dispose()
