"""Events the running alerting tells its webhooks (real HTTP receiver, real link
endpoint, SQLite and PostgreSQL): missed call, voicemail with a working link,
acknowledgement, shift start confirmed or not; counted per webhook in /metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.adapters.notify.webhook_spool import DeliverySpool
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.alerting.runtime import Alerting
from astreinte_ari.app.alerting_edges import start_alerting
from astreinte_ari.cli import main
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts.conftest import FakeClock
from tests.alerts.helpers import NoTelephonyService, closed_call, wait_for, write_config
from tests.alerts.test_alert_delivery import WAV, _voicemail
from tests.alerts.test_shift_start import SHIFT
from tests.alerts.webhook_receiver import Receiver

SLACK_PATH = "/services/T1/B1/slack-secret-path"
EMAIL_ONLY = "{p1: [{via: email}], p2: [{via: email}], p3: [{via: email}], sup: [{via: email}]}"


def with_webhooks(
    folder: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, **kw: object
) -> AppConfig:
    write_config(folder, **kw)  # type: ignore[arg-type]
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "webhook-secret-for-tests")
    monkeypatch.setenv("TEST_SLACK_URL", f"{receiver.base}{SLACK_PATH}")
    path = folder / "astreinte.yaml"
    with path.open("a", encoding="utf-8") as out:
        out.write(f"""  webhooks:
    tickets: {{kind: generic, url: "{receiver.base}/hook", secret_env: TEST_WEBHOOK_SECRET,
              backoff: 1s}}
    ops-chat: {{kind: slack, url_env: TEST_SLACK_URL, events: [voicemail_left, shift_started]}}
""")
    return load_config(path)


async def start(config: AppConfig, clock: FakeClock, metrics: ServiceMetrics) -> Alerting:
    alerting = await start_alerting(
        config=config,
        engine=create_db_engine(config.database_url()),
        service=NoTelephonyService(),
        clock=clock,
        paused=True,
        metrics=metrics,
    )
    assert alerting is not None
    return alerting


def delivered(metrics: ServiceMetrics, channel: str, result: str = "sent") -> float:
    value = metrics.registry.get_sample_value(
        "astreinte_alert_deliveries_total", {"channel": channel, "result": result}
    )
    return value or 0.0


async def test_missed_call_voicemail_and_ack_are_told(
    db_url: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_webhooks(
        tmp_path, receiver, monkeypatch, db_url=db_url, links_port=free_port(), channels="{}"
    )
    clock, metrics = FakeClock(), ServiceMetrics()
    alerting = await start(config, clock, metrics)
    try:
        engine = alerting.engine
        alert_id = await engine.open_missed_call(closed_call(config, clock(), _voicemail(config)))
        assert alert_id is not None
        await wait_for(lambda: len(receiver.to("/hook")) == 1 and receiver.to(SLACK_PATH))
        told = receiver.to("/hook")[0].json()
        assert (told["event"], told["id"]) == ("voicemail_left", f"{alert_id}-voicemail_left")
        assert told["line"] == "Maintenance" and told["caller"] == "+33612345678"
        assert told["text"].startswith("Message vocal laissé sur Maintenance par +33612345678")
        async with aiohttp.ClientSession() as http, http.get(told["link"]) as response:
            assert response.status == 200 and await response.read() == WAV
        [slack] = receiver.to(SLACK_PATH)
        assert "Message vocal laissé" in slack.json()["text"]

        assert await engine.ack(alert_id, by="p1", via="link") is not None
        await wait_for(lambda: len(receiver.to("/hook")) == 2)
        acked = receiver.to("/hook")[1].json()
        assert (acked["event"], acked["person"], acked["via"]) == (
            "alert_acknowledged",
            "Agent One",
            "link",
        )
        assert acked["text"].startswith("Pris en compte par Agent One (link) : appel manqué")

        # A missed call without a message is a call_missed (the chat room does not want it).
        other = await engine.open_missed_call(closed_call(config, clock(), None))
        await wait_for(lambda: len(receiver.to("/hook")) == 3)
        assert receiver.to("/hook")[2].json()["id"] == f"{other}-call_missed"
        await wait_for(lambda: delivered(metrics, "webhook:tickets") == 3)
        assert delivered(metrics, "webhook:ops-chat") == 1
        assert len(receiver.to(SLACK_PATH)) == 1
    finally:
        await alerting.close()
    spool = config.journal_dir / "webhooks"  # each delivery was kept there until it ended
    assert spool.is_dir() and list(spool.glob("*.json")) == []


async def test_shift_not_acknowledged_then_covered_is_told_in_english(
    db_url: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_webhooks(
        tmp_path,
        receiver,
        monkeypatch,
        db_url=db_url,
        links_port=free_port(),
        channels=EMAIL_ONLY,  # no SMTP server listens: the notifications fail, the events not
        shift_start=SHIFT,
        primary="[p3, p1]",
        language="en",
    )
    clock, metrics = FakeClock(), ServiceMetrics()
    clock.now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 07:00 in Paris; handoff at 08:00
    alerting = await start(config, clock, metrics)
    try:
        clock.advance(minutes=30)  # the shift-start alert opens
        await alerting.fire_due()
        clock.advance(minutes=20)  # its deadline passes
        await alerting.fire_due()
        await alerting.engine.drain()
        await wait_for(lambda: len(receiver.to("/hook")) == 1)
        missed = receiver.to("/hook")[0].json()
        assert (missed["event"], missed["person_id"]) == ("shift_not_acknowledged", "p3")
        assert missed["shift_start"] == "2026-03-02T07:00:00+00:00"
        assert missed["text"].startswith("The primary shift starting 02/03 08:00 was not")

        store = alerting.engine.store
        cover = store.find_shift("shift_cover", "t", "primary", datetime(2026, 3, 2, 7, tzinfo=UTC))
        assert cover is not None
        assert await alerting.engine.ack(cover.id, by="p2", via="link") is not None
        await wait_for(lambda: len(receiver.to("/hook")) == 3 and receiver.to(SLACK_PATH))
        events = [r.json()["event"] for r in receiver.to("/hook")[1:]]
        assert events == ["alert_acknowledged", "shift_started"]
        [slack] = receiver.to(SLACK_PATH)
        assert slack.json()["text"].startswith("Agent Two confirmed the primary shift starting")
    finally:
        await alerting.close()


async def test_cli_ack_is_told_by_the_running_service(
    db_url: str,
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = with_webhooks(
        tmp_path, receiver, monkeypatch, db_url=db_url, links_port=free_port(), channels="{}"
    )
    clock, metrics = FakeClock(), ServiceMetrics()
    alerting = await start(config, clock, metrics)
    try:
        alert_id = await alerting.engine.open_missed_call(closed_call(config, clock(), None))
        assert alert_id is not None
        await wait_for(lambda: len(receiver.to("/hook")) == 1)
        # `astreinte alerts ack` writes to the database and leaves the events in the spool.
        argv = ["alerts", "ack", alert_id, "-c", str(config.source_path), "--by", "ops"]
        assert await asyncio.to_thread(main, argv) == 0
        assert "webhooks: 1 delivery(ies) left for the running service" in capsys.readouterr().out
        [(name, kept, tries)] = DeliverySpool(config.journal_dir / "webhooks").pending()
        assert (name, kept.event, kept.via, tries) == ("tickets", "alert_acknowledged", "cli", 0)
        # The service's every-30-s chore picks it up (run here at once).
        chore = alerting.scheduler.apscheduler.get_job("webhook-spool")  # type: ignore[attr-defined]
        assert await chore.func() == 1
        await wait_for(lambda: len(receiver.to("/hook")) == 2)
        told = receiver.to("/hook")[1].json()
        assert (told["event"], told["person_id"], told["via"]) == (
            "alert_acknowledged",
            "ops",
            "cli",
        )
        await wait_for(lambda: DeliverySpool(config.journal_dir / "webhooks").pending() == [])
    finally:
        await alerting.close()
