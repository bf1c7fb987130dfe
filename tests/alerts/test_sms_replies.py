"""Acknowledging by SMS reply, end to end: an alert's SMS reaches a real HTTP SMS
gateway, the reply is POSTed over HTTP to the service's links endpoint as the
gateway would, the alert is acknowledged through the engine and no reminder
follows; wrong secrets, unknown senders and stray texts acknowledge nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.alerting.runtime import Alerting
from astreinte_ari.alerting.sms_reply import normalise_number, parse_reply
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.secrets import SecretError
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts.conftest import FakeClock, SmsGateway
from tests.alerts.helpers import P1, P2, P3, closed_call, start_without_telephony, wait_for
from tests.alerts.helpers import write_config as write_base_config

SECRET = "inbound-secret-for-tests-0123456789"
SMS_ONLY = "{p1: [{via: sms}], p2: [{via: sms}], sup: [{via: sms}], p3: [{via: sms}]}"


@pytest.fixture(autouse=True)
def _inbound_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMS_INBOUND", SECRET)


def _config(tmp_path: Path, db_url: str, gateway: SmsGateway, inbound: str) -> AppConfig:
    base = write_base_config(
        tmp_path, db_url=db_url, sms_url=gateway.url, links_port=free_port(), channels=SMS_ONLY
    )
    text = base.source_path.read_text()
    assert "    backoff: 0.01\n" in text
    text = text.replace("    backoff: 0.01\n", f"    backoff: 0.01\n    inbound: {inbound}\n", 1)
    base.source_path.write_text(text)
    return load_config(base.source_path)


def _code(sms: str) -> str:
    found = re.search(r"\[([0-9a-f]{8})\]", sms)
    assert found, sms
    return found.group(1)


def _trail(alerting: Alerting, like: str) -> list[tuple[str, dict[str, Any]]]:
    engine = alerting.engine.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log_table.c.kind, audit_log_table.c.payload)
            .where(audit_log_table.c.kind.like(like))
            .order_by(audit_log_table.c.seq)
        ).all()
    return [(kind, json.loads(payload)) for kind, payload in rows]


async def test_ok_reply_acknowledges_and_reminders_stop(
    db_url: str, tmp_path: Path, sms_gateway: SmsGateway
) -> None:
    config = _config(
        tmp_path,
        db_url,
        sms_gateway,
        "{secret_env: TEST_SMS_INBOUND, format: json, from_field: msisdn, "
        'text_field: message.body, national_prefix: "+33"}',
    )
    assert config.alerting is not None
    base = config.alerting.links.public_url
    clock = FakeClock()
    alerting = await start_without_telephony(config, clock)
    try:
        engine = alerting.engine
        alert_id = await engine.open_missed_call(closed_call(config, clock(), None))
        assert alert_id is not None
        await engine.drain()
        (sms,) = sms_gateway.texts_to(P1)
        assert _code(sms) == alert_id[:8] and "Repondez OK pour acquitter." in sms

        async def reply(sender: object, text: str, secret: str = SECRET) -> tuple[int, Any]:
            body = {"msisdn": sender, "message": {"body": text}}
            async with http.post(f"{base}/sms/inbound/{secret}", json=body) as response:
                answer = await response.json() if response.status == 200 else None
                return response.status, answer

        async with aiohttp.ClientSession() as http:
            # A wrong secret: 404, nothing acknowledged.
            assert (await reply(P1, "OK", secret=SECRET[:-1] + "x"))[0] == 404
            # An unknown sender: ignored, audited without the text, never answered.
            status, answer = await reply("+33699999999", "OK secret words")
            assert (status, answer["result"]) == (200, "unknown_sender")
            # Not a phone number at all: ignored too.
            status, answer = await reply("'; DROP TABLE alerts;--", "OK")
            assert (status, answer["result"]) == (200, "bad_sender")
            # A text that is not an acknowledgement: a help SMS back, nothing acked.
            status, answer = await reply("06 10 00 00 01", "who is calling?")
            assert answer["result"] == "not_understood"
            await wait_for(lambda: len(sms_gateway.texts_to(P1)) == 2)
            help_sms = sms_gateway.texts_to(P1)[1]
            assert "code" in help_sms and "Repondez OK pour" not in help_sms
            assert engine.store.get(alert_id).state == "open"  # type: ignore[union-attr]

            # p1's number as a JSON number without "+", "ok" with spaces: acknowledged.
            status, answer = await reply(33610000001, "  ok ")
            assert (status, answer) == (200, {"result": "acked", "acknowledged": 1})
        alert = engine.store.get(alert_id)
        assert alert is not None and alert.state == "acked"
        assert (alert.acked_by, alert.ack_via) == ("p1", "sms-reply")
        acked = [e for e in engine.store.events(alert_id) if e[1] == "acked"]  # type: ignore[attr-defined]
        assert acked[0][4] == f"acknowledged by SMS reply from {P1}"
        ((_, payload),) = _trail(alerting, "alert.acked")
        assert payload["detail"] == f"acknowledged by SMS reply from {P1}"
        ignored = _trail(alerting, "sms.reply_%")
        assert [k for k, _ in ignored] == [
            "sms.reply_unknown_sender",
            "sms.reply_bad_sender",
            "sms.reply_not_understood",
        ]
        assert not any(
            "secret words" in json.dumps(p) or "who is" in json.dumps(p) for _, p in ignored
        )

        # Acknowledged: no reminder, no escalation.
        sent = len(sms_gateway.requests)
        clock.advance(minutes=30)
        assert await alerting.fire_due() == 0
        await engine.drain()
        assert len(sms_gateway.requests) == sent and sms_gateway.texts_to(P2) == []
    finally:
        await alerting.close()


async def test_code_reply_acknowledges_that_alert_only(
    db_url: str, tmp_path: Path, sms_gateway: SmsGateway
) -> None:
    config = _config(
        tmp_path,
        db_url,
        sms_gateway,
        "{secret_env: TEST_SMS_INBOUND, format: form, secret_header: X-Gateway-Key}",
    )
    assert config.alerting is not None
    url = f"{config.alerting.links.public_url}/sms/inbound"
    clock = FakeClock()
    alerting = await start_without_telephony(config, clock)
    try:
        engine = alerting.engine
        first = await engine.open_missed_call(closed_call(config, clock(), None))
        second = await engine.open_missed_call(closed_call(config, clock(), None))
        assert first and second and first[:8] != second[:8]
        await engine.drain()
        codes = {_code(t) for t in sms_gateway.texts_to(P1)}
        assert codes == {first[:8], second[:8]}

        async def reply(sender: str, text: str, key: str = SECRET) -> tuple[int, str]:
            form = {"from": sender, "text": text}
            async with http.post(url, data=form, headers={"X-Gateway-Key": key}) as response:
                answer = await response.json() if response.status == 200 else {}
                return response.status, answer.get("result", "")

        async with aiohttp.ClientSession() as http:
            assert (await reply(P1, "1", key="nope"))[0] == 403
            async with http.post(url, data={"from": P1, "text": "1"}) as response:
                assert response.status == 403  # no header at all
            # p3 is in no chain of these alerts: their code acknowledges nothing.
            assert await reply(P3, second[:8]) == (200, "unknown_code")
            # p1 with the second alert's code, as copied from the SMS: that one only.
            assert await reply(P1, f"[{second[:8].upper()}]") == (200, "acked")
            states = [engine.store.get(a).state for a in (first, second)]  # type: ignore[union-attr]
            assert states == ["open", "acked"]
            # Then a plain "1": the rest of p1's open alerts.
            assert await reply(P1, "1") == (200, "acked")
            assert engine.store.get(first).state == "acked"  # type: ignore[union-attr]
            assert await reply(P1, "OK") == (200, "nothing_open")
    finally:
        await alerting.close()


def test_reply_parsing_and_sender_numbers() -> None:
    assert [parse_reply(t).kind for t in ("1", " ok.", "Ack!", "OK  3f9c0a12", "ok thanks")] == [
        "all",
        "all",
        "all",
        "code",
        "other",
    ]
    assert parse_reply("[3F9C0A12]").code == "3f9c0a12"
    assert parse_reply("11").kind == "other"
    assert normalise_number("+33 6 12-34.56 78") == "+33612345678"
    assert normalise_number("0033612345678") == "+33612345678"
    assert normalise_number("33612345678") == "+33612345678"
    assert normalise_number("0612345678") is None  # no national prefix configured
    assert normalise_number("0612345678", "+33") == "+33612345678"
    for hostile in ("", "+", "abc", "+33612345678;1", "+" + "9" * 30, "\x00+33612345678"):
        assert normalise_number(hostile, "+33") is None


@pytest.mark.parametrize("value", [None, "short-secret"])
async def test_missing_or_short_inbound_secret_stops_the_start(
    tmp_path: Path, sms_gateway: SmsGateway, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("TEST_SMS_INBOUND")
    else:
        monkeypatch.setenv("TEST_SMS_INBOUND", value)
    db_url = f"sqlite:///{tmp_path / 'never-opened.db'}"
    config = _config(tmp_path, db_url, sms_gateway, "{secret_env: TEST_SMS_INBOUND}")
    with pytest.raises(SecretError, match="inbound SMS secret"):
        await start_without_telephony(config, FakeClock())
    assert not (tmp_path / "never-opened.db").exists()
