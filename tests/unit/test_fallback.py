"""Fallback AGI logic (fake channel), spool records, and the idempotent spool import."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.agi import handle_call
from astreinte_ari.adapters.fallback.importer import import_fallback_spool
from astreinte_ari.adapters.fallback.records import call_id_for, hop_outcome
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import get_call
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.cli.log_format import JsonFormatter, call_logging
from astreinte_ari.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0  # Fri 2027-01-15 09:00 Paris: the demo line rings its cascade


@pytest.mark.parametrize(
    ("status", "key", "cause", "accept", "expected"),
    [
        ("ANSWER", "1", "16", True, HopOutcome.ACCEPTED),
        ("ANSWER", "none", "16", True, HopOutcome.NOT_ACCEPTED),
        ("ANSWER", "7", "16", True, HopOutcome.DECLINED),
        ("ANSWER", "", "16", True, HopOutcome.CANCELLED),
        ("ANSWER", "", "16", False, HopOutcome.CONNECTED),
        ("BUSY", "", "17", True, HopOutcome.BUSY),
        ("NOANSWER", "", "0", True, HopOutcome.NO_ANSWER),
        ("CANCEL", "", "0", True, HopOutcome.CANCELLED),
        ("CONGESTION", "", "21", True, HopOutcome.REJECTED),
        ("CHANUNAVAIL", "", "18", True, HopOutcome.UNREACHABLE),
        ("CONGESTION", "", "", True, HopOutcome.UNREACHABLE),
        ("INVALIDARGS", "", "", True, HopOutcome.FAILED),
    ],
)
def test_hop_outcome(status: str, key: str, cause: str, accept: bool, expected: HopOutcome) -> None:
    assert hop_outcome(status, key, cause, require_accept=accept) is expected


class FakeChannel:
    """Scripted Dial results per dial string; records what the AGI asked for."""

    def __init__(self, results: dict[str, tuple[str, str, str]], hangup_on: str = "") -> None:
        self.results = results  # dial string -> (DIALSTATUS, HANGUPCAUSE, key)
        self.hangup_on = hangup_on
        self.vars: dict[str, str] = {}
        self.apps: list[tuple[str, str]] = []

    def exec_app(self, app: str, data: str) -> bool:
        self.apps.append((app, data))
        if app == "Dial":
            target = data.split(",")[0]
            status, cause, key = self.results.get(target, ("NOANSWER", "0", ""))
            self.vars.update(DIALSTATUS=status, HANGUPCAUSE=cause, DIALEDTIME="5")
            self.vars["ANSWEREDTIME"] = "3" if status == "ANSWER" else ""
            self.vars["SHARED(ASTREINTE_FB_KEY)"] = key
            return target != self.hangup_on
        if app == "Record":
            Path(data.split(",")[0]).write_bytes(b"\0" * (44 + 16000 * 3))
        return True

    def get(self, name: str) -> str:
        return self.vars.get(name, "")

    def set(self, name: str, value: str) -> None:
        self.vars[name] = value


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    text = (REPO / "config" / "demo.yaml").read_text()
    path = tmp_path / "etc" / "astreinte.yaml"
    path.parent.mkdir()
    path.write_text(text + f'\nfallback: {{spool_dir: "{tmp_path / "spool"}"}}\n')
    return path


def _run(config_file: Path, channel: FakeChannel, uniqueid: str, at: float) -> CallOutcome:
    env = {
        "agi_channel": "PJSIP/caller-00000001",
        "agi_uniqueid": uniqueid,
        "agi_callerid": "+33199000001",
        "agi_calleridname": 'Evil "name"\n\x00; DROP TABLE calls;',
    }
    return handle_call(channel, env, "+33180000000", str(config_file), clock=lambda: at)


def _plan_dials(config_file: Path, at: float) -> list[str]:
    from datetime import UTC, datetime

    from astreinte_ari.routing.router import build_plan

    plan = build_plan(load_config(config_file), "+33180000000", datetime.fromtimestamp(at, UTC))
    assert plan is not None and len(plan.hops) >= 2
    return [h.dial_string for h in plan.hops]


def test_agi_dials_hops_in_order_with_press_1_gosub(config_file: Path) -> None:
    first, second = _plan_dials(config_file, T0)[:2]
    channel = FakeChannel({first: ("BUSY", "17", ""), second: ("ANSWER", "16", "1")})
    assert _run(config_file, channel, "1800000000.7", T0) is CallOutcome.ACCEPTED
    dials = [data for app, data in channel.apps if app == "Dial"]
    assert [d.split(",")[0] for d in dials] == [first, second]
    assert "U(astreinte-fallback-accept^PJSIP/caller-00000001^" in dials[0]
    assert channel.vars["ASTREINTE_FB_RESULT"] == "done"
    assert channel.vars["CALLERID(num)"] == "+33180000000"  # never the caller's identity
    steps = [
        json.loads(line)
        for line in (config_file.parent.parent / "spool" / "1800000000.7.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [s["event"] for s in steps] == ["call", "hop", "hop_end", "hop", "hop_end", "end"]
    assert steps[0]["caller_name"].startswith('Evil "name"')


def test_agi_caller_hangup_is_abandoned_and_voicemail_records(config_file: Path) -> None:
    dials = _plan_dials(config_file, T0)
    channel = FakeChannel({}, hangup_on=dials[0])
    assert _run(config_file, channel, "1800000000.8", T0) is CallOutcome.ABANDONED
    channel = FakeChannel({d: ("NOANSWER", "0", "") for d in dials})
    assert _run(config_file, channel, "1800000000.9", T0) is CallOutcome.VOICEMAIL
    assert any(app == "Record" for app, _ in channel.apps)


def test_agi_unknown_did_raises_for_last_resort(config_file: Path) -> None:
    channel = FakeChannel({})
    with pytest.raises(LookupError):
        handle_call(channel, {}, "+33100000000", str(config_file), clock=lambda: T0)
    assert "ASTREINTE_FB_RESULT" not in channel.vars


@pytest.fixture
def spool_with_calls(config_file: Path) -> Iterator[Path]:
    dials = _plan_dials(config_file, T0)
    _run(
        config_file,
        FakeChannel({dials[0]: ("ANSWER", "16", "none"), dials[1]: ("ANSWER", "16", "1")}),
        "1800000000.1",
        T0,
    )
    _run(config_file, FakeChannel({d: ("NOANSWER", "0", "") for d in dials}), "1800000000.2", T0)
    spool = config_file.parent.parent / "spool"
    # A call the AGI never handled (config broken): only the dialplan's last resort.
    (spool / "1800000000.3.lastresort.json").write_text(
        json.dumps(
            {
                "event": "lastresort",
                "uniqueid": "1800000000.3",
                "did": "+33180000000",
                "caller_number": "+33199000003",
                "call_start": str(T0),
                "agi_status": "FAILURE",
                "target": "PJSIP/+33610000001",
                "at": str(T0 + 0.3),
                "ended": str(T0 + 20),
                "dialstatus": "BUSY",
                "hangupcause": "17",
            }
        )
        + "\n"
    )
    # Still ringing (no end, fresh file): must be left for the next import.
    (spool / "1800000000.4.jsonl").write_text(
        json.dumps({"event": "call", "at": T0, "did": "+33180000000"}) + "\n"
    )
    yield spool


def test_import_is_idempotent_and_moves_files_aside(
    db_url: str, config_file: Path, spool_with_calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTREINTE_DATABASE_URL", db_url)
    config = load_config(config_file)
    engine = create_db_engine(db_url)
    writer = AuditWriter(engine)
    try:
        assert import_fallback_spool(config, writer) == 3
        assert sorted(p.name for p in spool_with_calls.glob("*.json*")) == ["1800000000.4.jsonl"]
        # Put the imported files back: a second import must not duplicate anything.
        for path in (spool_with_calls / "imported").iterdir():
            path.rename(spool_with_calls / path.name)
        assert import_fallback_spool(config, writer) == 3
        accepted = get_call(engine, call_id_for("1800000000.1"))
        assert accepted is not None and accepted.outcome == "accepted"
        assert [(h.outcome, h.dtmf) for h in accepted.hops] == [
            ("not_accepted", None),
            ("accepted", "1"),
        ]
        assert accepted.caller_name.startswith("Evil")
        voicemail = get_call(engine, call_id_for("1800000000.2"))
        assert voicemail is not None and voicemail.outcome == "voicemail"
        assert voicemail.voicemail_path and Path(voicemail.voicemail_path).is_relative_to(
            config.recordings_dir
        )
        last = get_call(engine, call_id_for("1800000000.3"))
        assert last is not None and last.outcome == "no_one"
        assert [(h.label, h.outcome, h.cause_code) for h in last.hops] == [
            ("last-resort", "busy", 17)
        ]
        assert [t.seq for t in accepted.transitions] == list(
            range(1, len(accepted.transitions) + 1)
        )
    finally:
        writer.close()
        engine.dispose()


def test_json_log_lines_carry_call_id() -> None:
    record = logging.LogRecord(
        "astreinte_ari.x", logging.WARNING, __file__, 1, 'hop %s: "%s"', (2, "é\n"), None
    )
    with call_logging("abc-123"):
        line = JsonFormatter().format(record)
    data = json.loads(line)
    assert "\n" not in line
    assert data["level"] == "WARNING" and data["logger"] == "astreinte_ari.x"
    assert data["message"] == 'hop 2: "é\n"' and data["call_id"] == "abc-123"
    assert data["time"].endswith("Z")
    assert "call_id" not in json.loads(JsonFormatter().format(record))
