"""Fallback AGI: a scripted channel, and main() over real pipes with hostile caller
bytes; spool write failures (real tmpfs); call times; one call id per channel.
The import, the plan cache and the watcher: test_fallback_import.py."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.agi import handle_call
from astreinte_ari.adapters.fallback.importer import import_fallback_spool
from astreinte_ari.adapters.fallback.records import ImportedCall, call_id_for, hop_outcome
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import CallDetail, get_call
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.cli.log_format import JsonFormatter, call_logging
from astreinte_ari.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0  # Fri 2027-01-15 09:00 Paris: the demo line rings its cascade
DID = "+33180000000"
LINE_NUMBER = "+33180000000"  # trunk.caller_id of the demo: what agents see
HOSTILE = 'Evil "name"\n\x00; DROP TABLE calls;'


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


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return _config(tmp_path, tmp_path / "spool")


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


# -- the spool cannot be written: the cascade goes on -------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, *, readonly: bool = False, full: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    opts = "ro,size=16k" if readonly else "size=16k"
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)
    try:
        if full:
            with contextlib.suppress(OSError), open(path / "filler", "wb") as fh:
                fh.write(b"\0" * 65536)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("fault", ["full", "read-only", "not-a-directory"])
def test_spool_write_failure_never_stops_the_cascade(tmp_path: Path, fault: str) -> None:
    with contextlib.ExitStack() as stack:
        if fault == "not-a-directory":
            (tmp_path / "file").write_text("")
            spool = tmp_path / "file" / "spool"
        else:
            spool = stack.enter_context(
                _tmpfs(tmp_path / "mnt", readonly=fault == "read-only", full=fault == "full")
            )
        config_file = _config(tmp_path, spool)
        dials = _dials(config_file)
        channel = FakeChannel({dials[0]: Ring("NOANSWER"), dials[1]: Ring("ANSWER", "16", "1")})
        assert _run(config_file, channel, "1800000000.21") is CallOutcome.ACCEPTED
    dialled = [data for app, data in channel.apps if app == "Dial"]
    assert len(dialled) == 2 and all("U(astreinte-fallback-accept^" in d for d in dialled)
    assert channel.vars["ASTREINTE_FB_RESULT"] == "done"
    assert any("spool write failed" in line for line in channel.logged), channel.logged
    assert any("NOT spooled: event=end" in line for line in channel.logged), channel.logged


def test_voicemail_still_offered_when_the_spool_is_full(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "mnt", full=True) as spool:
        config_file = _config(tmp_path, spool)
        channel = FakeChannel({d: Ring() for d in _dials(config_file)})
        outcome = _run(config_file, channel, "1800000000.22")
    assert outcome is CallOutcome.VOICEMAIL_EMPTY  # the message could not be kept
    assert [app for app, _ in channel.apps].count("Record") == 1
    assert channel.vars["ASTREINTE_FB_RESULT"] == "done"


def test_spool_full_then_freed_keeps_every_step_in_order(tmp_path: Path, db_url: str) -> None:
    with _tmpfs(tmp_path / "mnt", full=True) as spool:
        config_file = _config(tmp_path, spool)
        dials = _dials(config_file)
        channel = FakeChannel({dials[0]: Ring("BUSY", "17"), dials[1]: Ring("ANSWER", "16", "1")})
        # Space comes back while the second hop rings (an operator cleaned up).
        channel.on_dial = _OnSecond(lambda: (spool / "filler").unlink())
        assert _run(config_file, channel, "1800000000.23") is CallOutcome.ACCEPTED
        steps = _steps(spool / "1800000000.23.jsonl")
        assert [s["event"] for s in steps] == ["call", "hop", "hop_end", "hop", "hop_end", "end"]
        detail = _import_one(config_file, db_url, "1800000000.23")
    assert detail.outcome == "accepted" and [h.outcome for h in detail.hops] == ["busy", "accepted"]


class _OnSecond(list[str]):
    """A list whose second append runs `action` (FakeChannel.on_dial)."""

    def __init__(self, action: object) -> None:
        super().__init__()
        self.action = action

    def append(self, item: str) -> None:
        super().append(item)
        if len(self) == 2:
            self.action()  # type: ignore[operator]


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


# -- times: arrival, answer, key press, end -----------------------------------------


def _ts(value: datetime | None) -> float:
    assert value is not None
    return value.timestamp()


def test_times_are_arrival_answer_key_and_end(config_file: Path, db_url: str) -> None:
    first, second = _dials(config_file)[:2]
    arrived = T0 - 0.4  # the dialplan stamped it before Answer()
    ring = Ring("ANSWER", "16", "1", ring_s=3.0, prompt_s=4.5, talk_s=25.0)
    channel = FakeChannel(
        {first: Ring("NOANSWER", ring_s=6.0), second: ring}, ASTREINTE_ARRIVED=f"{arrived:.3f}"
    )
    assert _run(config_file, channel, "1800000000.31") is CallOutcome.ACCEPTED
    detail = _import_one(config_file, db_url, "1800000000.31")
    hop = detail.hops[1]
    answered, accepted = T0 + 6.0 + 3.0, T0 + 6.0 + 3.0 + 4.5
    assert _ts(detail.started_at) == pytest.approx(arrived, abs=0.002)
    assert _ts(hop.started_at) == pytest.approx(T0 + 6.0, abs=0.002)
    assert _ts(hop.answered_at) == pytest.approx(answered, abs=0.002)
    assert _ts(hop.accepted_at) == pytest.approx(accepted, abs=0.002)
    assert _ts(detail.answered_at) == pytest.approx(accepted, abs=0.002)  # the key, not the end
    assert _ts(detail.ended_at) == pytest.approx(accepted + 25.0, abs=0.002)
    assert detail.talk_seconds == pytest.approx(25.0, abs=0.002)
    assert detail.wait_seconds == pytest.approx(accepted - arrived, abs=0.01)
    states = [(t.from_state, t.to_state) for t in detail.transitions]
    assert states == [
        ("received", "dialing"),
        ("dialing", "agent_prompt"),
        ("agent_prompt", "bridged"),
        ("bridged", "ended"),
    ]


@pytest.mark.parametrize(
    "arrived",
    ["", "garbage", f"{T0 + 60:.3f}", f"{T0 - 7200:.3f}", "1e10", "1800000000.1.2"],
)
def test_missing_or_bogus_arrival_falls_back_to_the_agi_start(
    config_file: Path, arrived: str
) -> None:
    channel = FakeChannel({}, ASTREINTE_ARRIVED=arrived)
    _run(config_file, channel, "1800000000.32")
    call = _steps(config_file.parent.parent / "spool" / "1800000000.32.jsonl")[0]
    assert call["arrived"] is None and call["at"] == T0


# -- one call id per channel ----------------------------------------------------------


@pytest.mark.parametrize(
    ("uniqueid", "file_name"),
    [
        ("1800000000.1", "1800000000.1.jsonl"),  # old style: ids unchanged
        ("pbx-1.example_host-1800000000.42", "pbx-1.example_host-1800000000.42.jsonl"),
        ("../../etc/passwd", "....etcpasswd.jsonl"),
        ("", f"{T0:.6f}.jsonl"),
    ],
)
def test_spool_file_names_are_the_channel_key(
    config_file: Path, uniqueid: str, file_name: str
) -> None:
    _run(config_file, FakeChannel({}), uniqueid)
    spool = config_file.parent.parent / "spool"
    assert [p.name for p in spool.glob("*.jsonl")] == [file_name]


def test_old_spool_files_import_with_the_same_ids(config_file: Path, db_url: str) -> None:
    # The id the first importer gave UNIQUEID 1800000000.1 (uuid5 of its file name).
    assert call_id_for("1800000000.1") == "240cb416-0ad6-509a-8249-95641d091020"
    spool = config_file.parent.parent / "spool"
    spool.mkdir()
    old = [  # an accepted call as the previous AGI spooled it (no arrival, no stamps)
        {"event": "call", "at": T0, "did": DID, "line_name": "Demo", "trigger": "stasis"},
        {"event": "hop", "at": T0 + 0.1, "seq": 1, "person_id": "alice", "label": "primary"},
        {"event": "hop_end", "at": T0 + 30, "seq": 1, "dialstatus": "ANSWER", "key": "1",
         "dialedtime": "30", "answeredtime": "25", "outcome": "accepted"},
        {"event": "end", "at": T0 + 30, "outcome": "accepted", "detail": "x", "talk_seconds": 25},
    ]  # fmt: skip
    (spool / "1800000000.1.jsonl").write_text("".join(json.dumps(s) + "\n" for s in old))
    detail = _import_one(config_file, db_url, "1800000000.1")
    assert detail.id == "240cb416-0ad6-509a-8249-95641d091020" and detail.outcome == "accepted"
    assert _ts(detail.hops[0].answered_at) == pytest.approx(T0 + 0.1 + 30 - 25)


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
