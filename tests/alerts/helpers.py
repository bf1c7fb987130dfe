"""Configuration and objects shared by the alert tests."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.alerting.runtime import Alerting
from astreinte_ari.app.alerting_edges import start_alerting
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.router import build_plan

LINE = "+33180000001"
P1, P2, SUP = "+33610000001", "+33610000002", "+33620000001"
P3 = "+33610000003"
CALLER = "+33612345678"
LINK_KEY = "0123456789abcdef-test-link-key"


def write_config(
    folder: Path,
    *,
    db_url: str,
    smtp_port: int = 1,
    ca_file: Path | None = None,
    sms_url: str = "http://127.0.0.1:1/send",
    links_port: int,
    ari_url: str = "http://127.0.0.1:8088",
    channels: str = "{p1: [{via: sms}, {via: email}], p2: [{via: sms}], sup: [{via: sms}]}",
    shift_start: str = "[]",
    primary: str = "[p1]",
    line_name: str = "Maintenance",
    language: str = "fr",
    public_url: str | None = None,
) -> AppConfig:
    (folder / "link.key").write_text(LINK_KEY + "\n")
    path = folder / "astreinte.yaml"
    path.write_text(f"""
timezone: Europe/Paris
ari: {{url: "{ari_url}", username: astreinte}}
database: {{url: "{db_url}"}}
storage: {{recordings_dir: "{folder / "recordings"}"}}
trunk: {{dial: "PJSIP/{{number}}", caller_id: "+33180000000", allowed_prefixes: ["+336"]}}
lines:
  "{LINE}":
    name: "{line_name}"
    language: {language}
    team: t
    after_hours:
      hops: [{{rota: primary, timeout: 6}}, {{rota: secondary, timeout: 6}}]
      finally: voicemail
teams:
  t:
    people:
      p1: {{name: Agent One, mobile: "{P1}", email: p1@example.test}}
      p2: {{name: Agent Two, mobile: "{P2}", email: p2@example.test}}
      sup: {{name: Supervisor, mobile: "{SUP}"}}
      p3: {{name: Agent Three, mobile: "{P3}"}}
    rotas:
      primary: {{every: day, handoff: "08:00", start: 2026-01-05, people: {primary}}}
      secondary: {{every: day, handoff: "08:00", start: 2026-01-05, people: [p2]}}
alerting:
  smtp:
    host: 127.0.0.1
    port: {smtp_port}
    starttls: true
    username: astreinte
    password_env: TEST_SMTP_PASSWORD
    sender: astreinte@example.test
    {f'ca_file: "{ca_file}"' if ca_file else ""}
  sms:
    url: "{sms_url}"
    headers: {{Authorization: "Bearer ${{TEST_SMS_TOKEN}}"}}
    body: '{{"to": {{to_json}}, "text": {{text_json}}}}'
    success_contains: queued
    retries: 2
    backoff: 0.01
  voice: {{ring_timeout: 8}}
  links:
    listen_port: {links_port}
    public_url: "{public_url or f"http://127.0.0.1:{links_port}"}"
    key_file: link.key
    ttl: 1h
  policies:
    missed_call: {{renotify_every: 5m, escalate_after: 2}}
    shift_start: {{renotify_every: 5m, escalate_after: 3}}
  channels: {channels}
  shift_start: {shift_start}
""")
    return load_config(path)


def closed_call(config: AppConfig, now: datetime, voicemail: Path | None) -> CallClosed:
    plan = build_plan(config, LINE, now)
    assert plan is not None
    return CallClosed(
        call_id="11111111-2222-3333-4444-555555555555",
        plan=plan,
        caller_number=CALLER,
        caller_name="Client",
        outcome=CallOutcome.VOICEMAIL if voicemail else CallOutcome.NO_ONE,
        detail="message recorded",
        started_at=now,
        ended_at=now,
        last_state=CallState.RECORDING,
        voicemail_path=str(voicemail) if voicemail else None,
    )


class NoTelephonyService:
    """Stands in for OnCallService where no call is placed (email/SMS-only tests)."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def add_call_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def outbound_leg(self, **_: Any) -> Any:
        raise AssertionError("no voice alert expected in this test")

    async def wait_ready(self, timeout: float) -> bool:
        raise AssertionError("no voice alert expected in this test")


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def start_without_telephony(
    config: AppConfig, clock: Any, *, paused: bool = True
) -> Alerting:
    """Alerting on the config's database, no PBX (SMS/email only); `paused`: jobs
    run only through `fire_due()` on the injected clock."""
    alerting = await start_alerting(
        config=config,
        engine=create_db_engine(config.database_url()),
        service=NoTelephonyService(),
        clock=clock,
        paused=paused,
    )
    assert alerting is not None
    return alerting
