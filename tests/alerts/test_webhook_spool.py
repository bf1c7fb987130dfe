"""Webhook deliveries kept across restarts (webhook_spool.py) against a real local
HTTP server: a delivery pending at stop is made at the next start with the same
idempotency key, the failed tries are counted so a restart makes only those left,
unreadable or unconfigured files are set aside, and the periodic pick-up never
doubles a delivery in flight."""

from __future__ import annotations

from pathlib import Path

import pytest

from astreinte_ari.adapters.notify.webhook import WebhookPublisher
from astreinte_ari.adapters.notify.webhook_spool import DeliverySpool
from tests.alerts.helpers import wait_for
from tests.alerts.test_webhooks import event, generic
from tests.alerts.webhook_receiver import Receiver


async def test_a_delivery_pending_at_stop_is_delivered_at_the_next_start(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answer("/hook", (503, {"Retry-After": "600"}))  # "come back in 10 minutes"
    spec, target = generic(receiver)
    results: list[tuple[str, bool]] = []

    def started() -> WebhookPublisher:  # what each start of the service builds
        return WebhookPublisher(
            {"tickets": spec},
            {"tickets": target},
            on_result=lambda channel, sent: results.append((channel, sent)),
            spool=DeliverySpool(tmp_path / "spool"),
        )

    first = started()
    first.publish(event())
    await wait_for(lambda: len(receiver.to("/hook")) == 1)
    await first.close(timeout=0.1)  # the service stops while the delivery waits
    [(name, kept, tries)] = DeliverySpool(tmp_path / "spool").pending()
    assert (name, kept) == ("tickets", event())  # the whole event, dates included
    assert tries == 1  # the 503 is counted: the next start goes on from try 2
    [file] = (tmp_path / "spool").glob("*.json")
    assert file.stat().st_mode & 0o777 == 0o600
    assert results == []  # neither sent nor failed yet

    second = started()
    try:
        assert second.resume() == 1
        await second.drain(timeout=10)
    finally:
        await second.close()
    first_try, resumed = receiver.to("/hook")
    assert (first_try.status, resumed.status) == (503, 200)
    assert first_try.body == resumed.body  # same event, same id: a receiver dedups on it
    assert first_try.headers["X-Astreinte-Delivery"] == resumed.headers["X-Astreinte-Delivery"]
    assert results == [("webhook:tickets", True)]
    assert DeliverySpool(tmp_path / "spool").pending() == []


async def test_a_restart_goes_on_with_the_tries_left_not_from_the_first(
    receiver: Receiver, tmp_path: Path
) -> None:
    """retries 2 (3 tries in all), 2 failed before the restart: one more try, then
    given up. A crash-looping service must not retry a dead receiver forever."""
    receiver.answer("/hook", (503, {}), (503, {}), (503, {}))
    spec, target = generic(receiver, retries=2, backoff="0s")
    spool = DeliverySpool(tmp_path / "spool")
    spool.save("tickets", event(), tries=2)
    results: list[tuple[str, bool]] = []
    hooks = WebhookPublisher(
        {"tickets": spec},
        {"tickets": target},
        on_result=lambda channel, sent: results.append((channel, sent)),
        spool=spool,
    )
    try:
        assert hooks.resume() == 1
        await hooks.drain(timeout=10)
    finally:
        await hooks.close()
    assert [r.status for r in receiver.to("/hook")] == [503]
    assert results == [("webhook:tickets", False)]
    assert spool.pending() == []


async def test_a_spool_file_whose_tries_are_all_spent_is_not_sent_again(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec, target = generic(receiver, retries=1)
    spool = DeliverySpool(tmp_path / "spool")
    spool.save("tickets", event(), tries=2)  # the process died after its last try
    hooks = WebhookPublisher({"tickets": spec}, {"tickets": target}, spool=spool)
    try:
        assert hooks.resume() == 1
        await hooks.drain(timeout=10)
    finally:
        await hooks.close()
    assert receiver.requests == [] and spool.pending() == []
    assert "NOT delivered: its 2 tries were made before a restart" in caplog.text


async def test_spooled_delivery_of_a_removed_webhook_is_dropped(
    receiver: Receiver, tmp_path: Path
) -> None:
    spool = DeliverySpool(tmp_path / "spool")
    spool.save("gone", event())
    (tmp_path / "spool" / "garbage.x.json").write_text("{not json")
    spec, target = generic(receiver)
    hooks = WebhookPublisher({"tickets": spec}, {"tickets": target}, spool=spool)
    try:
        assert hooks.resume() == 0
    finally:
        await hooks.close()
    assert spool.pending() == [] and receiver.requests == []
    assert (tmp_path / "spool" / "garbage.x.bad").exists()  # set aside, not retried forever


async def test_the_periodic_pick_up_never_doubles_a_delivery_in_flight(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answer("/hook", (503, {"Retry-After": "600"}))
    spec, target = generic(receiver)
    hooks = WebhookPublisher(
        {"tickets": spec}, {"tickets": target}, spool=DeliverySpool(tmp_path / "spool")
    )
    try:
        hooks.publish(event())
        await wait_for(lambda: len(receiver.to("/hook")) == 1)
        assert hooks.resume() == 0  # spooled, but this process is already delivering it
        assert hooks.in_flight() == 1
    finally:
        await hooks.close(timeout=0.1)
    assert len(receiver.to("/hook")) == 1
    assert len(DeliverySpool(tmp_path / "spool").pending()) == 1  # kept for the next start
