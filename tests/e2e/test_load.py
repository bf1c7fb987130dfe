"""Load and database outage: 200 concurrent calls through the service, PostgreSQL
stopped for 60 s in the middle; every call routed, accepted and fully audited.

Issue 6 items 3 and 4: 7.5 new calls/s, press 1, 30 s talk; 0 calls lost; audit
writes spooled to the journal during the outage and replayed in order, with no
duplicates.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port, free_rtp_range
from tests.e2e.rig import ARI_PASSWORD, ServiceProcess
from tests.rig.postgres import PostgresHandle, stoppable_postgres
from tests.rig.sipp import agent_scenario, caller_scenario, start_sipp

pytestmark = [pytest.mark.e2e, pytest.mark.load]

LOAD_DID = "+33180000099"
LOAD_AGENT = "+33619999999"
CALLS = int(os.environ.get("ASTREINTE_LOAD_CALLS", "200"))
# sipp takes media ports upwards from its -mp base: room for every concurrent call.
SIPP_MEDIA_PORTS = 4 * (CALLS + 50)
RATE_PER_S = 7.5
TALK_MS = 30000
OUTAGE_S = float(os.environ.get("ASTREINTE_OUTAGE_S", "60"))


def _config(ari_url: str, db_url: str, work: Path, sip_port: int) -> str:
    return f"""timezone: Europe/Paris
ari: {{url: "{ari_url}", username: astreinte, app: astreinte}}
pbx: {{sip: "udp:127.0.0.1:{sip_port}"}}
database: {{url: "{db_url}"}}
storage: {{recordings_dir: "{work / "rec"}", journal_dir: "{work / "journal"}"}}
trunk: {{dial: "PJSIP/{{number}}", caller_id: "+33180000000", allowed_prefixes: ["+3361"]}}
defaults: {{accept_timeout: 6}}
lines:
  "{LOAD_DID}":
    name: Load
    team: load
    busy_agents: ring  # one sipp agent takes every call at once
    after_hours: {{hops: [{{person: agent, timeout: 15}}], finally: voicemail}}
teams:
  load:
    people:
      agent: {{name: Load Agent, mobile: "{LOAD_AGENT}"}}
"""


@pytest.fixture
def load_rig(tmp_path: Path) -> Iterator[tuple[LocalAsterisk, PostgresHandle, ServiceProcess]]:
    agent_port = free_port(socket.SOCK_DGRAM)
    pbx = LocalAsterisk(
        tmp_path / "asterisk",
        ari_password=ARI_PASSWORD,
        mobiles={LOAD_AGENT: agent_port},
        rtp_ports=5000,
    )
    pbx.start()
    try:
        with stoppable_postgres(tmp_path / "pg") as pg:
            config = tmp_path / "astreinte.yaml"
            config.write_text(_config(pbx.ari_url, pg.url, tmp_path, pbx.sip_port))
            service = ServiceProcess(config, pg.url, tmp_path / "rec", tmp_path / "service.log")
            service.start()
            try:
                yield pbx, pg, service
            finally:
                service.stop()
    finally:
        pbx.stop()


def test_200_concurrent_calls_with_a_60s_database_outage(
    load_rig: tuple[LocalAsterisk, PostgresHandle, ServiceProcess], tmp_path: Path
) -> None:
    pbx, pg, service = load_rig
    agent_port = next(iter(pbx.mobiles.values()))
    agents = start_sipp(
        tmp_path / "sipp",
        "agents",
        agent_scenario("accept", dtmf_after_ms=1000),
        local_port=agent_port,
        media_port=free_rtp_range(SIPP_MEDIA_PORTS)[0],  # free, picked now
        calls=CALLS,
        concurrency=CALLS + 50,
        timeout_s=600,
    )
    callers = start_sipp(
        tmp_path / "sipp",
        "callers",
        caller_scenario(
            number="+3319900[call_number]", name="Load", hold_ms=TALK_MS + 10000, speech=None
        ),
        local_port=free_port(socket.SOCK_DGRAM),
        media_port=free_rtp_range(SIPP_MEDIA_PORTS)[0],
        remote=f"127.0.0.1:{pbx.sip_port}",
        service=LOAD_DID,
        calls=CALLS,
        concurrency=CALLS + 50,
        timeout_s=600,
        extra_args=("-r", str(int(RATE_PER_S * 2)), "-rp", "2000"),
    )
    peak = _sample_peak_channels(pbx, stop_after=lambda: callers.process.poll() is not None)
    time.sleep(10)
    pg.stop()  # the outage: calls keep being routed, audit goes to the journal
    outage_started = time.monotonic()
    time.sleep(OUTAGE_S)
    journal = tmp_path / "journal" / "audit-journal.jsonl"
    journaled_during_outage = journal.stat().st_size
    pg.start()
    outage = time.monotonic() - outage_started
    assert callers.wait(300) == 0, callers.output()
    assert agents.wait(60) == 0, agents.output()
    peak.join(5)
    engine = create_db_engine(pg.url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                ended = conn.execute(
                    select(func.count())
                    .select_from(calls_table)
                    .where(calls_table.c.ended_at.is_not(None))
                ).scalar_one()
            if ended >= CALLS:
                break
            time.sleep(0.5)
        with engine.connect() as conn:
            calls = conn.execute(select(func.count()).select_from(calls_table)).scalar_one()
            accepted = conn.execute(
                select(func.count())
                .select_from(calls_table)
                .where(calls_table.c.outcome == "accepted")
            ).scalar_one()
            hops = conn.execute(select(func.count()).select_from(hops_table)).scalar_one()
            transitions = conn.execute(
                select(func.count()).select_from(call_transitions_table)
            ).scalar_one()
    finally:
        engine.dispose()
    print(
        f"\nload: {CALLS} calls at {RATE_PER_S}/s, peak {peak.result // 2} concurrent calls "
        f"({peak.result} channels), database down {outage:.0f}s, "
        f"journal held {journaled_during_outage} bytes"
    )
    assert journaled_during_outage > 0
    assert calls == CALLS and accepted == CALLS, (calls, accepted)
    assert hops == CALLS  # one hop each, no duplicate from the replay
    # announcing, dialing, agent_prompt, bridged, ended
    assert transitions == 5 * CALLS
    assert peak.result // 2 >= int(CALLS * 0.9), peak.result
    log = service.log_path.read_text()
    # The outage is logged as warnings (one traceback, the first); nothing worse.
    assert " ERROR " not in log and " CRITICAL " not in log, service.log_tail()


class _PeakSampler(threading.Thread):
    def __init__(self, pbx: LocalAsterisk, stop_after: object) -> None:
        super().__init__(daemon=True)
        self.pbx, self.stop_after, self.result = pbx, stop_after, 0

    def run(self) -> None:
        while not self.stop_after():  # type: ignore[operator]
            with contextlib.suppress(OSError):
                channels = self.pbx.ari_get("/channels")
                self.result = max(self.result, len(channels))  # type: ignore[arg-type]
            time.sleep(1.0)


def _sample_peak_channels(pbx: LocalAsterisk, stop_after: object) -> _PeakSampler:
    sampler = _PeakSampler(pbx, stop_after)
    sampler.start()
    return sampler
