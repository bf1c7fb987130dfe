"""Recorded conversations through a real Asterisk (record_calls on a line): the caller
hears the notice before anything is recorded, the bridge's recording is stored and
audited, reading it is audited, retention deletes it; the agent's stop keys discard it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import subprocess
import sys
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.retention import DELETE_CALL_RECORDING_KIND, run_retention
from astreinte_ari.config.reporting import RetentionConfig
from tests.e2e.rig import (
    ARI_PASSWORD,
    LINE_SHORT,
    P1,
    E2ERig,
    ServiceProcess,
    e2e_config,
    finish,
    now_utc,
)

pytestmark = pytest.mark.e2e

NOTICE_S = 7.0  # sounds/fr/astreinte-recording-notice.wav lasts 7.6 s


@contextlib.contextmanager
def recording_service(rig: E2ERig, tmp_path: Path, settings: str) -> Iterator[ServiceProcess]:
    """The service with LINE_SHORT recording its conversations (`settings`: the line's
    recording keys, YAML at the line's indentation)."""
    config_path = tmp_path / "astreinte.yaml"
    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    text = e2e_config(
        ari_url=rig.pbx.ari_url,
        db_url=db_url,
        recordings=tmp_path / "rec",
        cel_file=rig.pbx.cel_file,
        sip_port=rig.pbx.sip_port,
    )
    anchor = "    name: Short cascade\n"
    assert anchor in text
    config_path.write_text(text.replace(anchor, anchor + settings), encoding="utf-8")
    rig.pbx.cli(f"dialplan set global ASTREINTE_CONFIG {config_path}")
    proc = ServiceProcess(config_path, db_url, tmp_path / "rec", tmp_path / "service.log")
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        rig.cleanup()
        assert code == 0, f"service exited with {code}:\n{proc.log_tail()}"


def _records(engine: Engine, kind: str, subject: str) -> list[tuple[datetime, dict[str, Any]]]:
    log = audit_log_table.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(log.at, log.payload)
            .where(log.kind == kind, log.subject_id == subject)
            .order_by(log.seq)
        ).all()
    return [(at, json.loads(payload)) for at, payload in rows]


def _cli(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"ASTREINTE_ARI_PASSWORD": ARI_PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "astreinte_ari", *argv, "-c", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**__import__("os").environ, **env},
    )  # fmt: skip


def test_recorded_after_the_notice_stored_read_audited_then_retention(
    e2e_rig: E2ERig, tmp_path: Path
) -> None:
    settings = '    record_calls: true\n    recording_purpose: "e2e: training"\n'
    with recording_service(e2e_rig, tmp_path, settings) as service:
        since = now_utc()
        agent = e2e_rig.phone(P1, e2e_rig.agent("accept", dtmf="1", dtmf_after_ms=1200,
                                                talk_ms=6000))  # fmt: skip
        caller = e2e_rig.call(LINE_SHORT, hold_ms=60000)
        finish(caller, agent)
        call = service.wait_for_call(since, LINE_SHORT)
        assert service.engine is not None
        engine = service.engine
        assert call.outcome == "accepted", call.outcome_detail
        steps = _records(engine, "call.recording", call.id)
        assert [p["step"] for _, p in steps] == ["notice_played", "started", "stored"]
        # The caller heard the notice in full (ARI's PlaybackFinished, not failed) before
        # the recording started, and that is at least the notice's length after arrival.
        (notice_at, _), (started_at, started), (_, stored) = steps
        assert (notice_at - call.started_at).total_seconds() >= NOTICE_S
        assert notice_at <= started_at and started["detail"] == "purpose: e2e: training"
        # Kept beside the voicemails: a real WAV as long as the conversation.
        assert call.recording_path == stored["recording_path"]
        path = Path(call.recording_path)
        assert path.is_relative_to(service.recordings) and path.name.endswith(".conversation.wav")
        with wave.open(str(path)) as wav:
            seconds = wav.getnframes() / wav.getframerate()
        assert call.talk_seconds is not None and seconds > 3.0
        assert abs(seconds - call.talk_seconds) < 1.5, (seconds, call.talk_seconds)
        assert call.recording_seconds == pytest.approx(seconds, abs=0.1)
        stored_on_pbx = e2e_rig.pbx.ari_get("/recordings/stored")
        assert not [r for r in stored_on_pbx if r["name"].startswith("astreinte-conv-")]  # type: ignore[union-attr]

        # An auditor's copy: the access is in the chain, with who read it.
        out = tmp_path / "copy.wav"
        done = _cli(service.config_path, "calls", "recording", call.id[:12], "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        assert out.read_bytes() == path.read_bytes()
        ((_, access),) = _records(engine, "recording.accessed", call.id)
        assert access["message"].startswith(f"recording accessed by {getpass.getuser()}")
        assert access["via"] == "cli" and access["bytes"] == path.stat().st_size

        # Retention (6 months by default), run as if 184 days had passed.
        later = now_utc() + timedelta(days=184)
        recordings = service.recordings
        result = run_retention(engine, RetentionConfig(), recordings, clock=lambda: later)
        assert result.call_recordings_deleted == 1 and not path.exists()
        ((_, deleted),) = _records(engine, DELETE_CALL_RECORDING_KIND, call.id)
        assert deleted["deleted"] is True and deleted["path"] == str(path)
        report = verify(engine)
        assert report.ok, report.problems


def test_the_agent_excludes_the_call_and_nothing_is_kept(e2e_rig: E2ERig, tmp_path: Path) -> None:
    settings = (
        "    record_calls: true\n    recording_purpose: quality\n"
        "    agent_can_stop_recording: true\n"
    )
    with recording_service(e2e_rig, tmp_path, settings) as service:
        since = now_utc()
        scenario = e2e_rig.agent(
            "accept", dtmf="1", dtmf_after_ms=1200, later_keys=((2500, "*"), (400, "9")),
            talk_ms=3000,
        )  # fmt: skip
        agent = e2e_rig.phone(P1, scenario)
        caller = e2e_rig.call(LINE_SHORT, hold_ms=60000)
        finish(caller, agent)
        call = service.wait_for_call(since, LINE_SHORT)
        assert service.engine is not None
        assert call.outcome == "accepted", call.outcome_detail
        steps = _records(service.engine, "call.recording", call.id)
        assert [p["step"] for _, p in steps] == ["notice_played", "started", "excluded"]
        assert steps[-1][1]["detail"] == "the agent pressed *9: recording stopped and discarded"
        assert call.recording_path is None
        assert not list(service.recordings.rglob("*.conversation.wav"))
        stored_on_pbx = e2e_rig.pbx.ari_get("/recordings/stored")
        assert not [r for r in stored_on_pbx if r["name"].startswith("astreinte-conv-")]  # type: ignore[union-attr]
