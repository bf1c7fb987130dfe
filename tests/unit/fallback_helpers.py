"""What the fallback AGI tests share: a scripted channel (FakeChannel, Ring) on a clock
it advances like a real call, the demo configuration with a spool, runs of the AGI,
and the spool import. Used by test_fallback_*.py, test_hop_targets.py."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.agi import handle_call
from astreinte_ari.adapters.fallback.importer import import_fallback_spool
from astreinte_ari.adapters.fallback.records import ImportedCall
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import CallDetail, get_call
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0  # Fri 2027-01-15 09:00 Paris: the demo line rings its cascade
DID = "+33180000000"
LINE_NUMBER = "+33180000000"  # trunk.caller_id of the demo: what agents see
HOSTILE = 'Evil "name"\n\x00; DROP TABLE calls;'


@dataclass
class Ring:
    """What one Dial does on the scripted channel; the clock moves by these seconds."""

    status: str = "NOANSWER"
    cause: str = "0"
    key: str = ""
    ring_s: float = 5.0
    prompt_s: float = 0.0  # answer -> key
    talk_s: float = 0.0  # key -> hang-up


class FakeChannel:
    """Scripted Dial results per dial string, on a clock it advances like a real call."""

    def __init__(
        self, results: dict[str, Ring], hangup_on: str = "", at: float = T0, **variables: str
    ) -> None:
        self.results, self.hangup_on, self.now = results, hangup_on, at
        self.vars: dict[str, str] = dict(variables)
        self.apps: list[tuple[str, str]] = []
        self.logged: list[str] = []
        self.on_dial: list[str] = []  # hook: called targets (tests free disk space here)

    def clock(self) -> float:
        return self.now

    def exec_app(self, app: str, data: str) -> bool:
        self.apps.append((app, data))
        if app == "Dial":
            target = data.split(",")[0]
            self.on_dial.append(target)
            ring = self.results.get(target, Ring())
            start, self.now = self.now, self.now + ring.ring_s
            if ring.status == "ANSWER":
                self.vars["SHARED(ASTREINTE_FB_ANSWERED_AT)"] = f"{self.now:.3f}"
                self.now += ring.prompt_s
                self.vars["SHARED(ASTREINTE_FB_ACCEPTED_AT)"] = f"{self.now:.3f}"
                self.now += ring.talk_s
            self.vars.update(DIALSTATUS=ring.status, HANGUPCAUSE=ring.cause)
            self.vars["DIALEDTIME"] = str(int(self.now - start))
            self.vars["ANSWEREDTIME"] = str(int(ring.prompt_s + ring.talk_s))
            self.vars["SHARED(ASTREINTE_FB_KEY)"] = ring.key
            return target != self.hangup_on
        if app == "Record":
            with contextlib.suppress(OSError):
                Path(data.split(",")[0]).write_bytes(b"\0" * (44 + 16000 * 3))
        return True

    def get(self, name: str) -> str:
        return self.vars.get(name, "")

    def set(self, name: str, value: str) -> None:
        self.vars[name] = value

    def verbose(self, message: str, level: int) -> None:
        self.logged.append(message)


def _config(tmp_path: Path, spool: Path) -> Path:
    path = tmp_path / "etc" / "astreinte.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        (REPO / "config" / "demo.yaml").read_text() + f'\nfallback: {{spool_dir: "{spool}"}}\n'
    )
    return path


# Test files import config_file_fixture: their config_file parameters shadow no import (F811).
@pytest.fixture(name="config_file")
def config_file_fixture(tmp_path: Path) -> Path:
    return _config(tmp_path, tmp_path / "spool")


def _spool(config_file: Path) -> Path:
    return config_file.parent.parent / "spool"


def _run(config_file: Path, channel: FakeChannel, uniqueid: str, **kw: str) -> CallOutcome:
    env = {
        "agi_channel": "PJSIP/caller-00000001",
        "agi_uniqueid": uniqueid,
        "agi_callerid": "+33199000001",
        "agi_calleridname": HOSTILE,
    }
    return handle_call(channel, env, DID, str(config_file), clock=channel.clock, **kw)


def _dials(config_file: Path, at: float = T0) -> list[str]:
    from astreinte_ari.routing.router import build_plan

    plan = build_plan(load_config(config_file), DID, datetime.fromtimestamp(at, UTC))
    assert plan is not None and len(plan.hops) >= 2
    return [h.dial_string for h in plan.hops]


def _steps(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _import(config_file: Path, db_url: str) -> list[ImportedCall]:
    engine = create_db_engine(db_url)
    writer = AuditWriter(engine)
    try:
        return import_fallback_spool(load_config(config_file), writer, engine)
    finally:
        writer.close()
        engine.dispose()


def _import_one(config_file: Path, db_url: str, uniqueid: str) -> CallDetail:
    assert [c.call_id for c in _import(config_file, db_url)] == [call_id_for_channel(uniqueid)]
    engine = create_db_engine(db_url)
    try:
        detail = get_call(engine, call_id_for_channel(uniqueid))
    finally:
        engine.dispose()
    assert detail is not None
    return detail


def _ts(value: datetime | None) -> float:
    assert value is not None
    return value.timestamp()
