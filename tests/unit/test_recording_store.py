"""Recorded conversations in the configuration, the trail, retention and the access
log, on both database backends."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from astreinte_ari import cli
from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.journal import event_from_json, event_to_json
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.models import calls_table
from astreinte_ari.adapters.store.recording_access import (
    ACCESS_KIND,
    Accessor,
    RecordingKind,
    RecordingUnavailable,
    read_recording_audited,
)
from astreinte_ari.adapters.store.retention import DELETE_CALL_RECORDING_KIND, run_retention
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallEnded,
    CallStarted,
    ConversationRecording,
    RecordingStep,
)
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.config.loader import ConfigError, load_config
from astreinte_ari.config.reporting import RetentionConfig
from tests.unit.test_store import T0

REPO = Path(__file__).resolve().parents[2]


# -- configuration ---------------------------------------------------------------------


def _config(tmp_path: Path, line_extra: str) -> Path:
    text = (REPO / "config" / "astreinte.example.yaml").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("    team: maintenance "))
    extra = textwrap.indent(textwrap.dedent(line_extra).strip() + "\n", "    ")
    path = tmp_path / "astreinte.yaml"
    path.write_text("".join([*lines[: at + 1], extra, *lines[at + 1 :]]), encoding="utf-8")
    return path


def test_a_line_records_only_with_a_stated_purpose(tmp_path: Path) -> None:
    path = _config(tmp_path, "record_calls: true   #here")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (issue,) = info.value.issues
    assert "record_calls needs recording_purpose" in issue.message
    lines = path.read_text(encoding="utf-8").splitlines()
    assert (
        issue.line is not None and issue.line <= lines.index("    record_calls: true   #here") + 1
    )
    assert f"{path}:{issue.line}: " in str(info.value)  # file:line, as `check` prints it


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("recording_purpose: ''\nrecord_calls: true", ".recording_purpose: String should have"),
        ("record_calls: true\nrecording_purpose: '   '", "record_calls needs recording_purpose"),
        ("recording_stop_keys: '*A'", "recording_stop_keys"),
        ("recording_stop_keys: '*9*9*'", "recording_stop_keys"),
    ],
)
def test_recording_settings_refused(tmp_path: Path, extra: str, error: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, extra))
    assert error in str(info.value)


def test_recording_settings_accepted_and_the_defaults(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        """
        record_calls: true
        recording_purpose: "training"
        agent_can_stop_recording: true
        """,
    )
    config = load_config(path)
    line = next(iter(config.lines.values()))
    assert (line.record_calls, line.recording_purpose, line.recording_stop_keys) == (
        True,
        "training",
        "*9",
    )
    assert RetentionConfig().call_recordings_days == 183  # 6 months unless told otherwise
    with pytest.raises(ValueError):
        RetentionConfig(call_recordings_days=None)  # type: ignore[arg-type]


# -- trail, retention, access ----------------------------------------------------------------


async def _write(engine: Engine, events: list[AuditEvent]) -> None:
    writer = AuditWriter(engine)
    try:
        for event in events:
            writer.emit(event)
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        writer.close()


def _recorded_call(call_id: str, path: Path, started_days_ago: int, now_days: int) -> list[Any]:
    start = T0 + timedelta(days=now_days - started_days_ago)
    return [
        CallStarted(call_id, "+33180000000", "M", "night", "+33611", "Bob", "c", start),
        ConversationRecording(call_id, RecordingStep.NOTICE_PLAYED, start + timedelta(seconds=8)),
        ConversationRecording(
            call_id, RecordingStep.STARTED, start + timedelta(seconds=20), name="n",
            detail="purpose: training",
        ),
        ConversationRecording(
            call_id, RecordingStep.STORED, start + timedelta(seconds=50), name="n",
            path=str(path), seconds=30.0,
        ),
        CallEnded(call_id, CallOutcome.ACCEPTED, start + timedelta(seconds=50), "talked",
                  talk_seconds=30.0),
    ]  # fmt: skip


@pytest.fixture
def engine(db_url: str) -> Engine:
    engine = create_db_engine(db_url)
    yield engine  # type: ignore[misc]
    engine.dispose()


def _records(engine: Engine, kind: str) -> list[tuple[str, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log_table.c.subject_id, audit_log_table.c.payload)
            .where(audit_log_table.c.kind == kind)
            .order_by(audit_log_table.c.seq)
        ).all()
    return [(subject, json.loads(payload)) for subject, payload in rows]


def test_stored_recording_in_the_trail_retention_and_verify(engine: Engine, tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    old, recent = root / "old.conversation.wav", root / "recent.conversation.wav"
    root.mkdir()
    old.write_bytes(b"RIFF old conversation")
    recent.write_bytes(b"RIFF recent conversation")
    events = _recorded_call("old", old, 200, 400) + _recorded_call("recent", recent, 100, 400)
    asyncio.run(_write(engine, events))
    with engine.connect() as conn:
        row = conn.execute(
            select(calls_table.c.recording_path, calls_table.c.recording_seconds).where(
                calls_table.c.id == "old"
            )
        ).one()
    assert tuple(row) == (str(old), 30.0)
    steps = [p["step"] for s, p in _records(engine, "call.recording") if s == "old"]
    assert steps == ["notice_played", "started", "stored"]
    assert verify(engine).ok

    now = T0 + timedelta(days=400)
    result = run_retention(engine, RetentionConfig(), root, clock=lambda: now)  # the default
    assert result.call_recordings_deleted == 1
    assert not old.exists() and recent.exists()  # 200 days > 183; 100 days kept
    ((subject, deleted),) = _records(engine, DELETE_CALL_RECORDING_KIND)
    assert subject == "old" and deleted["deleted"] is True and len(deleted["sha256"]) == 64
    report = verify(engine)
    assert report.ok, report.problems
    again = run_retention(engine, RetentionConfig(), root, clock=lambda: now)
    assert (
        again.call_recordings_deleted == 0
        and len(_records(engine, DELETE_CALL_RECORDING_KIND)) == 1
    )

    # The recording's path is part of the verified trail: an edit is caught.
    with engine.begin() as conn:
        conn.execute(
            update(calls_table).where(calls_table.c.id == "recent").values(recording_path="/x")
        )
    assert "recording_path" in str(verify(engine).problems)


def test_every_access_is_in_the_chain_before_the_bytes(engine: Engine, tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    wav = root / "c1.conversation.wav"
    wav.write_bytes(b"RIFF conversation")
    asyncio.run(_write(engine, _recorded_call("c1", wav, 1, 1)))
    reader = Accessor("auditor", "cli", 1234)
    data = read_recording_audited(engine, "c1", RecordingKind.CONVERSATION, root, reader)
    assert data == b"RIFF conversation"
    ((subject, record),) = _records(engine, ACCESS_KIND)
    assert subject == "c1"
    assert record["message"] == "recording accessed by auditor (uid 1234)"
    assert (record["by"], record["uid"], record["via"], record["bytes"]) == (
        "auditor", 1234, "cli", len(data),
    )  # fmt: skip
    with pytest.raises(RecordingUnavailable, match="no voicemail"):
        read_recording_audited(engine, "c1", RecordingKind.VOICEMAIL, root, reader)
    with pytest.raises(RecordingUnavailable, match="outside"):
        read_recording_audited(engine, "c1", RecordingKind.CONVERSATION, tmp_path / "x", reader)
    wav.unlink()
    with pytest.raises(RecordingUnavailable, match="no longer exists"):
        read_recording_audited(engine, "c1", RecordingKind.CONVERSATION, root, reader)
    assert len(_records(engine, ACCESS_KIND)) == 1  # refusals read nothing, log nothing
    assert verify(engine).ok


def test_the_auditors_command(
    db_url: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = tmp_path / "c2.conversation.wav"
    wav.write_bytes(b"RIFF conversation two")
    asyncio.run(_write(engine, _recorded_call("c2-0000", wav, 1, 1)))
    out = tmp_path / "copy.wav"
    code = cli.main(["calls", "recording", "c2", "--url", db_url, "--out", str(out),
                     "--reason", "dispute 42"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert out.read_bytes() == b"RIFF conversation two"
    assert "access recorded in the audit trail" in printed
    ((_, record),) = _records(engine, ACCESS_KIND)
    assert record["via"] == "cli" and record["purpose"] == "dispute 42"
    assert record["message"].startswith("recording accessed by ")
    code = cli.main(["calls", "recording", "c2", "--url", db_url, "--out", str(out),
                     "--voicemail"])  # fmt: skip
    assert code != 0 and "no voicemail recording" in capsys.readouterr().err


def test_a_recording_step_survives_the_write_ahead_journal() -> None:
    step = ConversationRecording(
        "c3", RecordingStep.STORED, T0, name="astreinte-conv-c3", path="/r/c3.wav", seconds=4.5
    )
    assert event_from_json(event_to_json(step)) == step
