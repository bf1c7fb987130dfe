"""Voice alerts through a real Asterisk (LocalAsterisk) with sipp phones, in-process
service and alert engine (injected clock): DTMF 1 acknowledges, an unanswered
voice alert escalates, and 2 calls the caller back and bridges them with the agent."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

import pytest

from astreinte_ari.adapters.ari.client import AriClient
from astreinte_ari.adapters.ari.events import bridge_from_json, channel_from_json, event_from_json
from astreinte_ari.adapters.ari.telephony import AriTelephony
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.queries import get_call
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.alerting.runtime import Alerting
from astreinte_ari.app.alerting_edges import start_alerting
from astreinte_ari.app.compose import dial_guard
from astreinte_ari.app.features import LiveConfig
from astreinte_ari.callflow.audit_events import CallEnded, CallStarted
from astreinte_ari.callflow.dispatch import OnCallService
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.callflow.runtime import SoundLibrary
from astreinte_ari.callflow.telephony import Resynced
from astreinte_ari.config.model import AppConfig
from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port
from tests.alerts.conftest import FakeClock
from tests.alerts.helpers import CALLER, LINE, P1, P2, closed_call, write_config
from tests.e2e.rig import sipp_available
from tests.rig.sipp import SippRun, agent_scenario, start_sipp

pytestmark = pytest.mark.e2e
PASSWORD = "alerts-e2e-password"
VOICE = "{p1: [{via: voice}], p2: [{via: voice}]}"


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAsterisk]:
    if not sipp_available():
        pytest.fail("sipp/asterisk missing: run scripts/install-test-deps.sh")
    ports = {n: free_port(socket.SOCK_DGRAM) for n in (P1, P2, CALLER)}
    work = tmp_path_factory.mktemp("alerts-pbx")
    pbx = LocalAsterisk(work, ari_password=PASSWORD, mobiles=ports)
    pbx.start()
    try:
        yield pbx
    finally:
        pbx.stop()


@dataclass
class Rig:
    pbx: LocalAsterisk
    config: AppConfig
    clock: FakeClock
    alerting: Alerting
    writer: AuditWriter
    workdir: Path
    runs: list[SippRun]
    client: AriClient
    connect: Callable[[], Awaitable[None]]

    def phone(self, number: str, scenario: str) -> SippRun:
        run = start_sipp(
            self.workdir / "sipp",
            f"m{number[1:]}-{len(self.runs)}",
            scenario,
            local_port=self.pbx.mobiles[number],
            media_port=_even_port(),
        )
        self.runs.append(run)
        return run

    async def missed_call(self) -> str:
        """A call that ended in 'no one': its rows exist, its alert opens."""
        closed = closed_call(self.config, self.clock(), None)
        now = self.clock()
        self.writer.emit(
            CallStarted(closed.call_id, LINE, "Maintenance", "after_hours", CALLER, "C", "x", now)
        )
        self.writer.emit(CallEnded(closed.call_id, CallOutcome.NO_ONE, now, "all hops failed"))
        await self.writer.flush()
        alert_id = await self.alerting.engine.open_missed_call(closed)
        assert alert_id is not None
        return alert_id


def _even_port() -> int:
    while True:
        port = free_port(socket.SOCK_DGRAM)
        if port % 2 == 0 and port < 65000:
            return port


@pytest.fixture
async def rig(pbx: LocalAsterisk, tmp_path: Path) -> AsyncIterator[Rig]:
    async with _rig(pbx, tmp_path, connect_first=True) as rig:
        yield rig


@contextlib.asynccontextmanager
async def _rig(pbx: LocalAsterisk, tmp_path: Path, *, connect_first: bool) -> AsyncIterator[Rig]:
    """The service's telephony and alerting on a real PBX; `connect_first=False`:
    alerting starts before ARI is connected (a restart), `rig.connect()` later."""
    # SQLite only: the telephony does not depend on the backend (alert storage is
    # tested on both in test_alert_delivery.py / test_shift_start.py).
    db_url = f"sqlite:///{tmp_path / 'alerts.db'}"
    upgrade(db_url)
    config = write_config(
        tmp_path, db_url=db_url, links_port=free_port(), ari_url=pbx.ari_url, channels=VOICE
    )
    config = config.model_copy(
        update={
            "alerting": config.alerting.model_copy(  # type: ignore[union-attr]
                update={"policies": {"missed_call": _policy(), "shift_start": _policy()}}
            )
        }
    )
    engine = create_db_engine(db_url)
    writer = AuditWriter(engine)
    client = AriClient(pbx.ari_url, "astreinte", PASSWORD, "astreinte")
    port = AriTelephony(client, _dial_guard(config))
    clock = FakeClock()
    service = OnCallService(
        port=port,
        audit=writer,
        sounds=SoundLibrary(PurePosixPath(config.sounds_dir)),
        voicemail=None,  # type: ignore[arg-type]
        plan_for=lambda did, now: None,
        clock=clock,
    )
    connected = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def on_message(data: dict[str, object]) -> None:
        event = event_from_json(data)
        if event is not None:
            await service.handle(event)

    async def on_connect() -> None:
        # As the service does: the snapshot of the PBX makes telephony "ready".
        channels = tuple(channel_from_json(c) for c in await client.list_channels())
        bridges = tuple(bridge_from_json(b) for b in await client.list_bridges())
        await service.handle(Resynced(channels=channels, bridges=bridges))
        connected.set()

    async def connect() -> None:
        await client.open()
        tasks.append(asyncio.create_task(client.run_events(on_message, on_connect)))
        await asyncio.wait_for(connected.wait(), 15)

    if connect_first:
        await connect()
    alerting = await start_alerting(
        config=config,
        engine=engine,
        service=service,
        clock=clock,
        paused=True,
    )
    assert alerting is not None
    rig = Rig(pbx, config, clock, alerting, writer, tmp_path, [], client, connect)
    try:
        yield rig
    finally:
        for run in rig.runs:
            run.kill()
        await alerting.close()
        client.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        await writer.flush()
        writer.close()
        engine.dispose()


def _dial_guard(config: AppConfig):  # type: ignore[no-untyped-def]
    """As the service does: only targets the configuration allows are dialled."""
    return dial_guard(LiveConfig(config))


def _policy():  # type: ignore[no-untyped-def]
    from astreinte_ari.config.alerting import AlertPolicy

    return AlertPolicy.model_validate({"renotify_every": "5m", "escalate_after": 1})


async def _wait_sipp(*runs: SippRun) -> None:
    for run in runs:
        code = await asyncio.to_thread(run.wait, 60)
        assert code == 0, run.output()


@pytest.mark.smoke
async def test_voice_alert_acknowledged_by_dtmf_1(rig: Rig) -> None:
    agent = rig.phone(P1, agent_scenario("accept", dtmf="1", dtmf_after_ms=2500))
    alert_id = await rig.missed_call()
    await rig.alerting.engine.drain(timeout=60)
    await _wait_sipp(agent)
    alert = rig.alerting.engine.store.get(alert_id)
    assert alert is not None and alert.state == "acked", rig.alerting.engine.store.events(alert_id)
    assert (alert.acked_by, alert.ack_via) == ("p1", "voice-dtmf")
    events = [(e[1], e[3]) for e in rig.alerting.engine.store.events(alert_id)]
    assert ("notified", "voice") in events and ("acked", "voice-dtmf") in events


async def test_unanswered_voice_alert_escalates(rig: Rig) -> None:
    first = rig.phone(P1, agent_scenario("noanswer"))
    alert_id = await rig.missed_call()
    await rig.alerting.engine.drain(timeout=60)
    await _wait_sipp(first)
    store = rig.alerting.engine.store
    failed = [e for e in store.events(alert_id) if e[1] == "failed"]
    assert len(failed) == 1 and failed[0][2] == "p1"
    second = rig.phone(P2, agent_scenario("accept", dtmf="1", dtmf_after_ms=2000))
    rig.clock.advance(minutes=5)
    assert await rig.alerting.fire_due() == 1
    await rig.alerting.engine.drain(timeout=60)
    await _wait_sipp(second)
    alert = store.get(alert_id)
    assert alert is not None and (alert.state, alert.acked_by) == ("acked", "p2")
    assert ("escalated", "p2") in [(e[1], e[2]) for e in store.events(alert_id)]


async def test_press_2_calls_the_caller_back_and_bridges(rig: Rig) -> None:
    agent = rig.phone(P1, agent_scenario("accept", dtmf="2", dtmf_after_ms=2000))
    caller = rig.phone(CALLER, agent_scenario("silent", ring_ms=500))
    started: datetime = rig.clock()
    alert_id = await rig.missed_call()
    # Wait until Asterisk holds a bridge with the agent and the called-back caller.
    bridged: list[str] = []
    for _ in range(150):
        for bridge in await rig.client.list_bridges():
            channels = [str(c) for c in bridge.get("channels", [])]  # type: ignore[union-attr]
            if len(channels) == 2 and any(c.startswith("astreinte-alert-cb-") for c in channels):
                bridged = channels
        if bridged:
            break
        await asyncio.sleep(0.2)
    assert bridged, "agent and caller were never bridged"
    await asyncio.sleep(1.0)  # they talk...
    callback_leg = next(c for c in bridged if c.startswith("astreinte-alert-cb-"))
    await rig.client.hangup(callback_leg)  # ...then the caller hangs up
    await rig.alerting.engine.drain(timeout=60)
    await _wait_sipp(agent, caller)
    alert = rig.alerting.engine.store.get(alert_id)
    assert alert is not None and (alert.state, alert.ack_via) == ("acked", "voice-callback")
    await rig.writer.flush()
    call = get_call(rig.alerting.engine.store.engine, alert.call_id or "")
    assert call is not None
    [hop] = [h for h in call.hops if h.label == "call-back"]
    assert (hop.person_id, hop.number, hop.outcome, hop.dtmf) == ("p1", CALLER, "connected", "2")
    assert hop.seq == 1 and hop.answered_at is not None and hop.started_at >= started
    assert "talked" in (hop.cause_text or "")


async def _bridged_callback(rig: Rig, timeout: float = 30.0) -> list[str]:
    """The channels of the bridge holding the agent and the called-back caller."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for bridge in await rig.client.list_bridges():
            channels = [str(c) for c in bridge.get("channels", [])]  # type: ignore[union-attr]
            if len(channels) == 2 and any(c.startswith("astreinte-alert-cb-") for c in channels):
                return channels
        await asyncio.sleep(0.2)
    raise AssertionError("agent and caller were never bridged")


async def test_a_key_pressed_while_the_number_is_read_acknowledges(rig: Rig) -> None:
    """The caller's number is read digit by digit (own prompts, 3.4 s to ~9 s after
    the answer): a 1 pressed at 5.5 s, in the middle of it, counts."""
    agent = rig.phone(P1, agent_scenario("accept", dtmf="1", dtmf_after_ms=5500))
    alert_id = await rig.missed_call()
    await rig.alerting.engine.drain(timeout=60)
    await _wait_sipp(agent)
    store = rig.alerting.engine.store
    alert = store.get(alert_id)
    assert alert is not None and (alert.state, alert.ack_via) == ("acked", "voice-dtmf"), (
        store.events(alert_id)
    )
    assert not [e for e in store.events(alert_id) if e[1] == "failed"]


async def test_press_2_during_the_readout_acknowledges_at_once_no_reminder_during_the_call(
    rig: Rig,
) -> None:
    """2 pressed while the number is read: the alert is acknowledged the moment the
    key is pressed, not when the call-back ends: the reminders due during a long
    call-back (ten minutes of the alert's clock here) send nothing."""
    agent = rig.phone(P1, agent_scenario("accept", dtmf="2", dtmf_after_ms=5500))
    caller = rig.phone(CALLER, agent_scenario("silent", ring_ms=500))
    alert_id = await rig.missed_call()
    bridged = await _bridged_callback(rig)
    store = rig.alerting.engine.store
    alert = store.get(alert_id)
    assert alert is not None and (alert.state, alert.ack_via) == ("acked", "voice-callback")
    rig.clock.advance(minutes=10)  # two renotify periods pass during the conversation
    assert await rig.alerting.fire_due() == 0
    callback_leg = next(c for c in bridged if c.startswith("astreinte-alert-cb-"))
    await rig.client.hangup(callback_leg)
    await rig.alerting.engine.drain(timeout=60)
    await _wait_sipp(agent, caller)
    notified = [e for e in store.events(alert_id) if e[1] == "notified"]
    assert len(notified) == 1, store.events(alert_id)


async def test_a_voice_step_due_during_a_restart_is_delivered_once_telephony_is_back(
    pbx: LocalAsterisk, tmp_path: Path
) -> None:
    """Alerting starts before ARI is connected (a restart: overdue jobs run at once);
    the voice step waits for the PBX instead of failing, and is delivered once."""
    async with _rig(pbx, tmp_path, connect_first=False) as rig:
        agent = rig.phone(P1, agent_scenario("accept", dtmf="1", dtmf_after_ms=2500))
        alert_id = await rig.missed_call()  # its first step is due at once
        store = rig.alerting.engine.store
        await asyncio.sleep(1.0)  # the step waits: telephony not ready yet
        assert [e[1] for e in store.events(alert_id)] == ["opened"]
        await rig.connect()
        await rig.alerting.engine.drain(timeout=60)
        await _wait_sipp(agent)
        events = [(e[1], e[3]) for e in store.events(alert_id)]
        assert events.count(("notified", "voice")) == 1, events
        assert not [e for e in events if e[0] == "failed"], events
        alert = store.get(alert_id)
        assert alert is not None and alert.state == "acked"
