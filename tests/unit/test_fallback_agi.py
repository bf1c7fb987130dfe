"""Fallback AGI: how a hop ended, the cascade over a scripted channel, and main() over
real pipes with hostile caller bytes.

The spool (write failures, times, call ids): test_fallback_spool.py; the import:
test_fallback_import.py; the plan cache: test_fallback_plan_cache.py; the watcher:
test_fallback_watcher.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.agi import handle_call
from astreinte_ari.adapters.fallback.importer import import_fallback_spool
from astreinte_ari.adapters.fallback.records import hop_outcome
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import get_call
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.config.loader import load_config
from tests.unit.fallback_helpers import (
    DID,
    HOSTILE,
    LINE_NUMBER,
    REPO,
    FakeChannel,
    Ring,
    _config,
    _dials,
    _run,
    _steps,
    config_file_fixture,  # noqa: F401 (a fixture)
)


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


def test_agi_dials_hops_in_order_with_press_1_gosub(config_file: Path) -> None:
    first, second = _dials(config_file)[:2]
    channel = FakeChannel({first: Ring("BUSY", "17"), second: Ring("ANSWER", "16", "1")})
    assert _run(config_file, channel, "1800000000.7") is CallOutcome.ACCEPTED
    dials = [data for app, data in channel.apps if app == "Dial"]
    assert [d.split(",")[0] for d in dials] == [first, second]
    assert "U(astreinte-fallback-accept^PJSIP/caller-00000001^" in dials[0]
    assert channel.vars["ASTREINTE_FB_RESULT"] == "done"
    assert channel.vars["CALLERID(num)"] == LINE_NUMBER  # never the caller's identity
    steps = _steps(config_file.parent.parent / "spool" / "1800000000.7.jsonl")
    assert [s["event"] for s in steps] == ["call", "hop", "hop_end", "hop", "hop_end", "end"]
    assert steps[0]["caller_name"] == HOSTILE and steps[0]["trigger"] == "stasis"


def test_agi_caller_hangup_is_abandoned_and_voicemail_records(config_file: Path) -> None:
    dials = _dials(config_file)
    assert _run(config_file, FakeChannel({}, hangup_on=dials[0]), "1800000000.8") is (
        CallOutcome.ABANDONED
    )
    channel = FakeChannel({d: Ring() for d in dials})
    assert _run(config_file, channel, "1800000000.9") is CallOutcome.VOICEMAIL
    assert any(app == "Record" for app, _ in channel.apps)


def test_agi_unknown_did_raises_for_last_resort(config_file: Path) -> None:
    channel = FakeChannel({})
    with pytest.raises(LookupError):
        handle_call(channel, {}, "+33100000000", str(config_file), clock=channel.clock)
    assert "ASTREINTE_FB_RESULT" not in channel.vars


# -- hostile caller data, through main() and pyst2 over real pipes -------------------


class FakeAsterisk:
    """The Asterisk side of an AGI: env block (raw bytes), then answers each command."""

    def __init__(self, env: bytes, variables: dict[str, str]) -> None:
        self.env, self.variables = env, variables
        self.commands: list[bytes] = []
        self.dialled_at = 0.0  # the gosub's stamps fall inside the Dial

    def serve(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(self.env)
        proc.stdin.flush()
        for line in proc.stdout:
            self.commands.append(line)
            text = line.decode("utf-8", "replace").strip()
            reply = "200 result=1"
            if text.startswith("GET VARIABLE "):
                name = text.split(" ", 2)[2].strip('"')
                value = self.variables.get(name, "")
                if name.endswith(("ANSWERED_AT)", "ACCEPTED_AT)")):
                    value = f"{self.dialled_at:.3f}"
                reply = f"200 result=1 ({value})" if value else "200 result=0"
            elif text.startswith("EXEC "):
                self.dialled_at, reply = time.time(), "200 result=0"
            proc.stdin.write(reply.encode() + b"\n")
            proc.stdin.flush()


def _env_block(
    number: bytes, name: bytes, uniqueid: bytes = b"pbx-1.example-1800000000.5"
) -> bytes:
    fields = [
        (b"agi_request", b"astreinte-fallback"),
        (b"agi_channel", b"PJSIP/caller-00000005"),
        (b"agi_uniqueid", uniqueid),
        (b"agi_callerid", number),
        (b"agi_calleridname", name),
        (b"agi_context", b"astreinte-fallback"),
    ]
    return b"".join(k + b": " + v + b"\n" for k, v in fields) + b"\n"


def _run_agi_process(args: list[str], asterisk: FakeAsterisk) -> tuple[int, bytes]:
    code = "import sys; from astreinte_ari.adapters.fallback.agi import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": ""},
    )
    server = threading.Thread(target=asterisk.serve, args=(proc,), daemon=True)
    server.start()
    try:
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    server.join(5)
    assert proc.stderr is not None
    return proc.returncode, proc.stderr.read()


@pytest.mark.parametrize(
    ("number", "name"),
    [
        pytest.param(b"\xff\xfe", b"", id="invalid-utf8-number"),
        pytest.param(b"+33199000001", b"Jos\xe9 \xff\xc3", id="invalid-utf8-name"),
        pytest.param(b"\x01\x1b[31m", b"\x7f\x1b]0;pwned\x07 tab\there", id="control-chars"),
        pytest.param(b"9" * 1000, b"N" * 1000, id="1000-bytes"),
        pytest.param(b"'; DROP TABLE calls;--", b'$(rm -rf /) `id` "|&;<>', id="sql-shell-meta"),
    ],
)
def test_agi_main_survives_hostile_caller_bytes(
    tmp_path: Path, db_url: str, number: bytes, name: bytes
) -> None:
    spool = tmp_path / "spool"
    config_file = _config(tmp_path, spool)
    first = _dials(config_file, time.time())[0]
    asterisk = FakeAsterisk(
        _env_block(number, name),
        {"DIALSTATUS": "ANSWER", "HANGUPCAUSE": "16", "SHARED(ASTREINTE_FB_KEY)": "1"},
    )
    code, stderr = _run_agi_process([DID, str(config_file)], asterisk)
    assert code == 0, stderr.decode(errors="replace")
    sent = b"".join(asterisk.commands)
    assert b'SET VARIABLE "ASTREINTE_FB_RESULT" "done"' in sent
    assert f'SET VARIABLE "CALLERID(num)" "{LINE_NUMBER}"'.encode() in sent
    dial = next(c for c in asterisk.commands if c.startswith(b"EXEC Dial"))
    assert (
        dial.startswith(f'EXEC Dial "{first},'.encode()) and b"U(astreinte-fallback-accept^" in dial
    )
    assert number not in sent  # caller data is never sent back to Asterisk
    assert not name or name[:20] not in sent
    engine = create_db_engine(db_url)
    writer = AuditWriter(engine)
    try:
        calls = import_fallback_spool(load_config(config_file), writer, engine)
        assert [c.call_id for c in calls] == [call_id_for_channel("pbx-1.example-1800000000.5")]
        detail = get_call(engine, calls[0].call_id)
    finally:
        writer.close()
        engine.dispose()
    assert detail is not None and detail.outcome == "accepted"
    for stored in (detail.caller_number, detail.caller_name):
        assert stored.isprintable() and len(stored) <= 256
        stored.encode("utf-8")  # no lone surrogate left
    if number == b"\xff\xfe":
        assert detail.caller_number == "\\xff\\xfe"  # the raw bytes, escaped (safe_text)
