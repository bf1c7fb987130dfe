"""Fallback AGI spool: write failures (real tmpfs) never stop the cascade; call times;
one call id per channel, in the spool and the log lines."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.records import call_id_for
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.cli.log_format import JsonFormatter, call_logging
from tests.unit.fallback_helpers import (
    DID,
    T0,
    FakeChannel,
    Ring,
    _config,
    _dials,
    _import_one,
    _run,
    _steps,
    _ts,
    config_file_fixture,  # noqa: F401 (a fixture)
)


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
