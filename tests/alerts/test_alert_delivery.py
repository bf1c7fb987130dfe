"""Missed-call alerts against a real SMTP server (aiosmtpd, STARTTLS + auth), a real
HTTP SMS gateway and the real link endpoint, on SQLite and PostgreSQL.
Time is an injected clock; the persisted APScheduler jobs are fired by `fire_due`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import create_engine, select

from astreinte_ari.adapters.store.alerts import AlertStore
from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.adapters.store.recording_access import ACCESS_KIND
from astreinte_ari.config.model import AppConfig
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts.conftest import FakeClock, Mailbox, SmsGateway
from tests.alerts.helpers import (
    CALLER,
    P1,
    P2,
    closed_call,
    start_without_telephony,
    wait_for,
    write_config,
)

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40


def _voicemail(config: AppConfig) -> Path:
    path = config.recordings_dir / "2026" / "03" / "call.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(WAV)
    return path


def _link(text: str, kind: str) -> str:
    m = re.search(rf"(http://127\.0\.0\.1:\d+/{kind}/[A-Za-z0-9_.-]+)", text)
    assert m, text
    return m.group(1)


def _accesses(db_url: str) -> list[tuple[str, dict[str, Any]]]:
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_log_table.c.subject_id, audit_log_table.c.payload).where(
                    audit_log_table.c.kind == ACCESS_KIND
                )
            ).all()
    finally:
        engine.dispose()
    return [(subject, json.loads(payload)) for subject, payload in rows]


async def test_alert_repeats_escalates_and_stops_on_link_ack(
    db_url: str, tmp_path: Path, mailbox: Mailbox, sms_gateway: SmsGateway
) -> None:
    config = write_config(
        tmp_path,
        db_url=db_url,
        smtp_port=mailbox.port,
        ca_file=mailbox.ca_file,
        sms_url=sms_gateway.url,
        links_port=free_port(),
    )
    clock = FakeClock()
    alerting = await start_without_telephony(config, clock)
    try:
        engine = alerting.engine
        alert_id = await engine.open_missed_call(closed_call(config, clock(), _voicemail(config)))
        assert alert_id is not None
        await engine.drain()
        # Round 1, at once: SMS with both links, email with the recording attached.
        assert len(sms_gateway.texts_to(P1)) == 1
        assert len(mailbox.messages) == 1 and mailbox.logins == ["astreinte"]
        mail = mailbox.messages[0]
        assert CALLER in mail["Subject"] and "Maintenance" in mail["Subject"]
        attachments = [p for p in mail.walk() if p.get_filename()]
        assert [p.get_content_type() for p in attachments] == ["audio/wav"]
        assert attachments[0].get_payload(decode=True) == WAV

        # Nothing more before the 5 minutes are up.
        clock.advance(minutes=4)
        assert await alerting.fire_due() == 0
        clock.advance(minutes=1)
        assert await alerting.fire_due() == 1
        await engine.drain()
        assert len(sms_gateway.texts_to(P1)) == 2 and len(mailbox.messages) == 2
        assert sms_gateway.texts_to(P2) == []
        # Round 3: escalated to the next person of the chain (escalate_after: 2).
        clock.advance(minutes=5)
        await alerting.fire_due()
        await engine.drain()
        assert len(sms_gateway.texts_to(P2)) == 1 and len(sms_gateway.texts_to(P1)) == 2
        events = engine.store.events(alert_id)
        assert ("escalated", "p2") in [(e[1], e[2]) for e in events]

        # The SMS link downloads the voicemail; a tampered link is refused.
        sms = sms_gateway.texts_to(P2)[0]
        vm_link, ack_link = _link(sms, "vm"), _link(sms, "ack")
        async with aiohttp.ClientSession() as http:
            async with http.get(vm_link) as response:
                assert response.status == 200
                assert await response.read() == WAV
            # The download is in the audit chain, with who fetched it (the link's person).
            ((subject, access),) = _accesses(db_url)
            assert (access["by"], access["via"], access["recording"]) == ("p2", "link", "voicemail")
            assert access["message"] == "recording accessed by p2" and subject
            tampered = vm_link[:-3] + ("AAA" if not vm_link.endswith("AAA") else "BBB")
            async with http.get(tampered) as response:
                assert response.status == 403
            async with http.get(ack_link.replace("/ack/", "/vm/")) as response:
                assert response.status == 403  # an ack token does not open the recording
            async with http.get(ack_link) as response:  # GET only shows the button
                assert response.status == 200 and "<form" in await response.text()
            assert engine.store.get(alert_id).state == "open"  # type: ignore[union-attr]
            async with http.post(ack_link) as response:
                assert response.status == 200
            alert = engine.store.get(alert_id)
            assert alert is not None and alert.state == "acked"
            assert (alert.acked_by, alert.ack_via) == ("p2", "link")
            # Acknowledged: no more reminders.
            clock.advance(minutes=30)
            assert await alerting.fire_due() == 0
            await engine.drain()
            assert len(sms_gateway.texts_to(P2)) == 1
            # After the link's lifetime (1h) it is refused as expired.
            clock.advance(hours=1)
            async with http.get(vm_link) as response:
                assert response.status == 403
                assert "expired" in await response.text()
    finally:
        await alerting.close()


async def test_restart_between_two_reminders_loses_nothing(
    db_url: str, tmp_path: Path, mailbox: Mailbox, sms_gateway: SmsGateway
) -> None:
    config = write_config(
        tmp_path,
        db_url=db_url,
        smtp_port=mailbox.port,
        ca_file=mailbox.ca_file,
        sms_url=sms_gateway.url,
        links_port=free_port(),
        channels="{p1: [{via: sms}], p2: [{via: sms}]}",
    )
    clock = FakeClock()
    first = await start_without_telephony(config, clock)
    alert_id = await first.engine.open_missed_call(closed_call(config, clock(), None))
    await first.engine.drain()
    assert len(sms_gateway.texts_to(P1)) == 1
    await first.close()  # the service stops between two reminders

    clock.advance(minutes=6)
    # A new process: only the database remains.
    second = await start_without_telephony(config, clock)
    try:
        jobs = second.scheduler.apscheduler.get_jobs(jobstore="default")
        assert [j.id for j in jobs] == [f"alert-{alert_id}"]
        assert await second.fire_due() == 1
        await second.engine.drain()
        assert len(sms_gateway.texts_to(P1)) == 2
    finally:
        await second.close()


async def test_sms_gateway_failures_are_retried_then_reported(
    db_url: str, tmp_path: Path, mailbox: Mailbox, sms_gateway: SmsGateway
) -> None:
    config = write_config(
        tmp_path,
        db_url=db_url,
        sms_url=sms_gateway.url,
        links_port=free_port(),
        channels="{p1: [{via: sms}], p2: [{via: sms}]}",
    )
    clock = FakeClock()
    alerting = await start_without_telephony(config, clock)
    try:
        sms_gateway.fail_next = 2  # two 503s, then accepted (retries: 2)
        first = await alerting.engine.open_missed_call(closed_call(config, clock(), None))
        await alerting.engine.drain()
        assert [r["ok"] for r in sms_gateway.requests] == [False, False, True]
        sms_gateway.fail_next = 3  # never accepted within the retries
        second = await alerting.engine.open_missed_call(closed_call(config, clock(), None))
        await alerting.engine.drain()
        store = alerting.engine.store
        assert [e[1] for e in store.events(first or "")] == ["opened", "notified"]
        failed = [e for e in store.events(second or "") if e[1] == "failed"]
        assert len(failed) == 1 and "HTTP 503" in failed[0][4]
        assert len(sms_gateway.requests) == 6
    finally:
        await alerting.close()


def test_cli_lists_and_acknowledges(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from astreinte_ari.cli import main

    store = AlertStore(create_engine(db_url.replace("postgresql://", "postgresql+psycopg://")))
    clock = FakeClock()
    store.insert_alert(
        dict(
            id="abcdef123456",
            kind="missed_call",
            state="open",
            policy="missed_call",
            chain=("p1",),
            opened_at=clock(),
            next_step=1,
            next_at=clock() + timedelta(minutes=5),
            line_name="Maintenance",
            caller_number="'; DROP TABLE alerts; --",
        )
    )
    assert main(["alerts", "list", "--url", db_url]) == 0
    out = capsys.readouterr().out
    assert "abcdef123456" in out and "missed_call" in out
    assert main(["alerts", "ack", "abcdef", "--url", db_url, "--by", "ops"]) == 0
    alert = store.get("abcdef123456")
    assert alert is not None and (alert.state, alert.acked_by, alert.ack_via) == (
        "acked",
        "ops",
        "cli",
    )
    assert main(["alerts", "ack", "abcdef123456", "--url", db_url]) == 1  # already acknowledged
    capsys.readouterr()
    assert main(["alerts", "list", "--url", db_url]) == 0
    assert capsys.readouterr().out.strip() == "no open alert"
    assert main(["alerts", "list", "--all", "--url", db_url]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "abcdef123456" in line)
    acked_at = alert.acked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert f"(acked by ops via cli at {acked_at})" in row
    assert row.split()[5] == "-"  # no "next" step for an acknowledged alert


def test_cli_shows_one_alert_with_its_history(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an auditor reads of one alert: each message and each step of a voice call."""
    from astreinte_ari.cli import main

    store = AlertStore(create_engine(db_url.replace("postgresql://", "postgresql+psycopg://")))
    at = FakeClock()()
    store.insert_alert(
        dict(
            id="fedcba654321",
            kind="missed_call",
            state="open",
            policy="missed_call",
            chain=("p1", "p2"),
            opened_at=at,
            next_step=1,
            next_at=at + timedelta(minutes=5),
            line_name="Maintenance",
            caller_number="0199000001",
            call_id="call-1",
        )
    )
    store.add_event("fedcba654321", at, "opened", detail="missed_call")
    later = at + timedelta(seconds=7)
    store.add_event(
        "fedcba654321", later, "call", person_id="p1", channel="voice",
        detail="call ringing -> reading: answered by p1",
    )  # fmt: skip
    assert main(["alerts", "show", "fedc", "--url", db_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("alert fedcba654321: missed_call, open (times in UTC)"), out
    assert "about:   Maintenance from 0199000001" in out and "chain:   p1 > p2" in out
    step = next(line for line in out.splitlines() if "ringing -> reading" in line)
    assert step.split()[:4] == [*later.strftime("%Y-%m-%d %H:%M:%S").split(), "call", "p1/voice"]
    assert main(["alerts", "show", "nope", "--url", db_url]) == 1
    assert "no alert 'nope'" in capsys.readouterr().err


async def test_apscheduler_itself_fires_the_persisted_reminder(
    db_url: str, tmp_path: Path, sms_gateway: SmsGateway
) -> None:
    """Production path: the running scheduler (not fire_due) wakes the engine up."""
    config = write_config(
        tmp_path,
        db_url=db_url,
        sms_url=sms_gateway.url,
        links_port=free_port(),
        channels="{p1: [{via: sms}], p2: [{via: sms}]}",
    )
    alerting = await start_without_telephony(config, lambda: datetime.now(UTC), paused=False)
    try:
        alert_id = await alerting.engine.open_missed_call(
            closed_call(config, datetime.now(UTC), None)
        )
        await wait_for(lambda: len(sms_gateway.texts_to(P1)) == 1)
        # Pretend the 5 minutes are over: pull the reminder's wake-up to now.
        alerting.scheduler.apscheduler.modify_job(
            f"alert-{alert_id}", jobstore="default", next_run_time=datetime.now(UTC)
        )
        store = alerting.engine.store
        alerting.engine.clock = lambda: datetime.now(UTC) + timedelta(minutes=5)
        await wait_for(lambda: len(sms_gateway.texts_to(P1)) == 2, timeout=10)
        # The gateway has the SMS before the sender records it (after its reply).
        await wait_for(lambda: _notified(store, alert_id) == 2, timeout=5)
        await alerting.engine.drain()
        assert _notified(store, alert_id) == 2 and len(sms_gateway.texts_to(P1)) == 2
    finally:
        await alerting.close()


def _notified(store: Any, alert_id: str | None) -> int:  # AlertStore: events() is its own
    return [e[1] for e in store.events(alert_id or "")].count("notified")
