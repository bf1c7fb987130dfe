"""Webhooks against a real local HTTP server: signature checked with the verifier
printed in docs/alerts.md, retries honouring Retry-After, one idempotency key per
event, no retry on a 4xx refusal, Slack/Teams/Matrix shapes, no secret in logs."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from astreinte_ari.adapters.notify.webhook import WebhookPublisher, retry_after
from astreinte_ari.adapters.notify.webhook_payloads import Target
from astreinte_ari.alerting.ports import AlertEvent
from astreinte_ari.config.alerting import WebhookConfig
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts.webhook_receiver import Receiver

DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"
SECRET = b"generic-signing-secret-for-tests"
SLACK_PATH = "/services/T0000/B0000/slack-url-secret-part"
MATRIX_TOKEN = "syt_matrix-token-secret"
AT = datetime(2026, 12, 1, 4, 12, 9, tzinfo=UTC)


def documented_verify() -> Any:
    """The receiver's verifier exactly as docs/alerts.md prints it."""
    text = DOCS.read_text(encoding="utf-8")
    m = re.search(r"```python\n(import hashlib.*?)```", text, re.S)
    assert m, "no verifier in docs/alerts.md"
    assert len(m.group(1).strip().splitlines()) <= 10
    namespace: dict[str, Any] = {}
    exec(m.group(1), namespace)  # our own documentation, run as printed
    return namespace["verify"]


def event(kind: str = "voicemail_left", **values: Any) -> AlertEvent:
    base: dict[str, Any] = dict(
        event=kind,
        id=f"3f2a9c0b1d4e-{kind}",
        at=AT,
        alert_id="3f2a9c0b1d4e",
        alert_kind="missed_call",
        language="fr",
        text="Message vocal laissé sur Maintenance par +33612345678 le 01/12 05:12. [3f2a9c0b]",
        line="Maintenance",
        did="+33180000001",
        call_id="1111-2222",
        caller='+33612345678"><script>',
        link="https://astreinte.example/vm/Xy12",
        team="t",
    )
    return AlertEvent(**(base | values))


def hook(kind: str = "generic", **fields: Any) -> WebhookConfig:
    settings: dict[str, Any] = {"kind": kind, "url": "http://placeholder", "backoff": "1s"}
    if kind == "generic":
        settings["secret_env"] = "UNUSED"
    if kind in ("slack", "teams"):
        settings = {"kind": kind, "url_env": "UNUSED", "backoff": "1s"}
    if kind == "matrix":
        settings |= {"room": "!room:example", "token_env": "UNUSED"}
    return WebhookConfig.model_validate(settings | fields)


def publisher(
    results: list[tuple[str, bool]], **targets: tuple[WebhookConfig, Target]
) -> WebhookPublisher:
    return WebhookPublisher(
        {name: spec for name, (spec, _) in targets.items()},
        {name: target for name, (_, target) in targets.items()},
        on_result=lambda channel, sent: results.append((channel, sent)),
    )


def generic(receiver: Receiver, **fields: Any) -> tuple[WebhookConfig, Target]:
    extra = (("Authorization", "Bearer ticket-api-token"),)  # headers: from the config
    target = Target("tickets", "generic", f"{receiver.base}/hook", secret=SECRET, headers=extra)
    return hook(**fields), target


async def test_generic_payload_is_signed_and_verifies_with_the_documented_verifier(
    receiver: Receiver,
) -> None:
    results: list[tuple[str, bool]] = []
    hooks = publisher(results, tickets=generic(receiver))
    try:
        assert await hooks.deliver("tickets", event()) is True
    finally:
        await hooks.close()
    [got] = receiver.to("/hook")
    verify = documented_verify()
    assert verify(SECRET, got.headers, got.body) is True
    assert verify(SECRET, got.headers, got.body.replace(b"Maintenance", b"Maintenanc3")) is False
    assert verify(b"another-secret", got.headers, got.body) is False
    stale = got.headers | {"X-Astreinte-Timestamp": str(int(time.time()) - 3600)}
    assert verify(SECRET, stale, got.body) is False  # a replay an hour later
    assert got.headers["Authorization"] == "Bearer ticket-api-token"
    assert got.headers["X-Astreinte-Event"] == "voicemail_left"
    assert got.headers["X-Astreinte-Delivery"] == "3f2a9c0b1d4e-voicemail_left"
    body = got.json()
    assert body["id"] == "3f2a9c0b1d4e-voicemail_left" and body["event"] == "voicemail_left"
    assert body["at"] == "2026-12-01T04:12:09+00:00" and body["version"] == 1
    assert body["caller"] == '+33612345678"><script>'  # data, as sent, never interpreted
    assert body["link"] == "https://astreinte.example/vm/Xy12"
    assert body["person"] is None and body["shift_start"] is None  # keys always present
    assert results == [("webhook:tickets", True)]


async def test_503_with_retry_after_is_retried_after_it_and_delivered_once(
    receiver: Receiver,
) -> None:
    receiver.answer("/hook", (503, {"Retry-After": "2"}))
    results: list[tuple[str, bool]] = []
    hooks = publisher(results, tickets=generic(receiver, backoff="1s"))
    try:
        assert await hooks.deliver("tickets", event()) is True
    finally:
        await hooks.close()
    first, second = receiver.to("/hook")
    assert (first.status, second.status) == (503, 200)
    assert second.at - first.at >= 2.0, second.at - first.at  # Retry-After, not the 1 s backoff
    assert first.headers["X-Astreinte-Delivery"] == second.headers["X-Astreinte-Delivery"]
    assert results == [("webhook:tickets", True)]


async def test_500_then_200_is_delivered_once_with_the_same_idempotency_key(
    receiver: Receiver,
) -> None:
    receiver.answer("/hook", (500, {}))
    results: list[tuple[str, bool]] = []
    hooks = publisher(results, tickets=generic(receiver, backoff="1s"))
    try:
        hooks.publish(event("call_missed", link=None))  # the engine's way: in the background
        assert hooks.in_flight() == 1
        await hooks.drain(timeout=15)
        assert hooks.in_flight() == 0
    finally:
        await hooks.close()
    tries = receiver.to("/hook")
    assert [t.status for t in tries] == [500, 200]
    assert tries[1].at - tries[0].at >= 1.0  # the backoff
    keys = {t.headers["X-Astreinte-Delivery"] for t in tries} | {t.json()["id"] for t in tries}
    assert keys == {"3f2a9c0b1d4e-call_missed"}
    assert results == [("webhook:tickets", True)]


async def test_400_is_not_retried_and_counted_failed(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer("/hook", (400, {}), (400, {}))
    results: list[tuple[str, bool]] = []
    hooks = publisher(results, tickets=generic(receiver, retries=3))
    try:
        with caplog.at_level(logging.INFO):
            assert await hooks.deliver("tickets", event()) is False
    finally:
        await hooks.close()
    assert [t.status for t in receiver.to("/hook")] == [400]
    assert results == [("webhook:tickets", False)]
    assert "NOT delivered: HTTP 400 (refused, not retried)" in caplog.text


async def test_retries_are_bounded(receiver: Receiver) -> None:
    receiver.answer("/hook", (502, {}), (503, {"Retry-After": "0"}), (500, {}))
    results: list[tuple[str, bool]] = []
    hooks = publisher(results, tickets=generic(receiver, retries=2, backoff="1s"))
    try:
        assert await hooks.deliver("tickets", event()) is False
    finally:
        await hooks.close()
    assert [t.status for t in receiver.to("/hook")] == [502, 503, 500]
    assert results == [("webhook:tickets", False)]


def test_retry_after_seconds_or_http_date() -> None:
    now = datetime(2026, 12, 1, 4, 0, 0, tzinfo=UTC)
    assert retry_after("2", now) == 2.0
    assert retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert retry_after("soon", now) is None and retry_after(None, now) is None


async def test_chat_payload_shapes(receiver: Receiver) -> None:
    results: list[tuple[str, bool]] = []
    hooks = publisher(
        results,
        slack=(hook("slack"), Target("slack", "slack", f"{receiver.base}{SLACK_PATH}")),
        teams=(hook("teams"), Target("teams", "teams", f"{receiver.base}/teams")),
        matrix=(
            hook("matrix"),
            Target(
                "matrix",
                "matrix",
                receiver.base,
                room="!room:example",
                token=MATRIX_TOKEN,
            ),
        ),
    )
    told = event(caller="+33612345678", text="Appel <urgent> & co [3f2a9c0b]")
    try:
        hooks.publish(told)
        await hooks.drain(timeout=10)
    finally:
        await hooks.close()
    [slack] = receiver.to(SLACK_PATH)
    assert slack.method == "POST"
    assert slack.json() == {
        "text": "Appel &lt;urgent&gt; &amp; co [3f2a9c0b]\n"
        "<https://astreinte.example/vm/Xy12|Écouter le message>"
    }
    [teams] = receiver.to("/teams")
    message = teams.json()
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"] == [{"type": "TextBlock", "text": told.text, "wrap": True}]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Écouter le message", "url": told.link}
    ]
    txn_path = (
        "/_matrix/client/v3/rooms/!room:example/send/m.room.message/3f2a9c0b1d4e-voicemail_left"
    )
    [matrix] = receiver.to(txn_path)
    assert matrix.method == "PUT"
    assert matrix.headers["Authorization"] == f"Bearer {MATRIX_TOKEN}"
    assert matrix.json() == {
        "msgtype": "m.text",
        "body": f"{told.text}\nÉcouter le message: {told.link}",
    }
    assert sorted(results) == [(f"webhook:{n}", True) for n in ("matrix", "slack", "teams")]


async def test_no_url_secret_or_token_in_the_logs(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}{SLACK_PATH}"  # nothing listens: connection refused
    receiver.answer("/_matrix/client/v3/rooms/!room:example/send/m.room.message/x", (401, {}))
    receiver.answer("/hook", (500, {}))
    results: list[tuple[str, bool]] = []
    hooks = publisher(
        results,
        tickets=generic(receiver),
        slack=(hook("slack", retries=1), Target("slack", "slack", dead)),
        matrix=(
            hook("matrix"),
            Target("matrix", "matrix", receiver.base, room="!room:example", token=MATRIX_TOKEN),
        ),
    )
    try:
        with caplog.at_level(logging.DEBUG):
            hooks.publish(event(id="x"))
            await hooks.drain(timeout=15)
            logging.getLogger("test").info("targets: %r", list(hooks._targets.values()))
    finally:
        await hooks.close()
    assert sorted(results) == [
        ("webhook:matrix", False),
        ("webhook:slack", False),
        ("webhook:tickets", True),
    ]
    logged = caplog.text
    assert "webhook slack" in logged and "ClientConnectorError" in logged  # it did log
    for secret in ("slack-url-secret-part", MATRIX_TOKEN, SECRET.decode(), "ticket-api-token"):
        assert secret not in logged


async def test_matrix_rate_limit_waits_its_retry_after_ms(receiver: Receiver) -> None:
    path = "/_matrix/client/v3/rooms/!room:example/send/m.room.message/3f2a9c0b1d4e-call_missed"
    receiver.answer_json(path, 429, '{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1500}')
    results: list[tuple[str, bool]] = []
    matrix = Target("matrix", "matrix", receiver.base, room="!room:example", token=MATRIX_TOKEN)
    hooks = publisher(results, matrix=(hook("matrix", backoff="1s"), matrix))
    try:
        assert await hooks.deliver("matrix", event("call_missed")) is True
    finally:
        await hooks.close()
    limited, sent = receiver.to(path)
    assert (limited.status, sent.status) == (429, 200)
    assert sent.at - limited.at >= 1.5  # the homeserver's wait, not the 1 s backoff
    assert results == [("webhook:matrix", True)]
