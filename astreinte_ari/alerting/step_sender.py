"""Sending one step of an alert: through its channel's notifier, with what came of it in
the alert's events, and the same step again when the channel was not ready yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol

from astreinte_ari.alerting.links import LinkIssuer
from astreinte_ari.alerting.messages import compose_message, recipient_of
from astreinte_ari.alerting.model import Alert
from astreinte_ari.alerting.policy import Step
from astreinte_ari.alerting.ports import AlertMessage, AlertRepository, Notifier, NotifyError
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4  # a step a channel could not take yet (telephony reconnecting) is retried


class Acknowledge(Protocol):
    """The engine's acknowledgement, for what a channel brings back (a key, a call back)."""

    async def __call__(self, alert_id: str, *, by: str, via: str) -> object: ...


class StepSender:
    """Sends the engine's due steps; each send runs as a background task (`spawn`)."""

    def __init__(
        self,
        *,
        store: AlertRepository,
        notifiers: dict[str, Notifier],
        links: LinkIssuer | None,
        config: Callable[[], AppConfig],
        clock: Callable[[], datetime],
        acknowledge: Acknowledge,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.store = store
        self.notifiers = notifiers
        self.links = links
        # Read at each send: a live edit applies from the next step, and tests move the clock.
        self._config = config
        self._clock = clock
        self._acknowledge = acknowledge
        self._spawn = spawn

    async def send(self, alert: Alert, step: Step, attempt: int = 1) -> None:
        via = step.channel.via
        notifier = self.notifiers.get(via)
        recipient = recipient_of(self._config(), alert.team, step.person_id)
        if notifier is None or recipient is None:
            what = f"no {via} notifier configured" if notifier is None else "unknown person"
            await self.record(alert, step, "failed", what)
            return
        message = await self.message(alert, step.person_id, links=via in ("email", "sms"))

        async def acknowledge(how: str) -> None:
            await self._acknowledge(alert.id, by=step.person_id, via=how)

        def progress(text: str) -> None:  # the call's steps, into the alert's history
            self._spawn(self.record(alert, step, "call", text[:300]))

        try:
            delivery = await notifier.send(recipient, message, acknowledge, progress)
        except NotifyError as exc:
            retry = exc.retry_after is not None and attempt < MAX_ATTEMPTS
            log.error("alert %s: %s to %s failed: %s", alert.id, via, step.person_id, exc)
            detail = f"round {step.round + 1}: {exc}"
            if retry:
                detail += f" (attempt {attempt}, again in {exc.retry_after:.0f} s)"
            await self.record(alert, step, "failed", detail)
            if retry:
                assert exc.retry_after is not None
                self._spawn(self._send_later(alert.id, step, attempt + 1, exc.retry_after))
            return
        except Exception as exc:  # a notifier bug must not kill the alert
            log.exception("alert %s: %s notifier crashed", alert.id, via)
            await self.record(alert, step, "failed", repr(exc)[:300])
            return
        await self.record(alert, step, "notified", f"round {step.round + 1}: {delivery.detail}")
        # In a cluster, this node's journal then says which node sent which round.
        log.info("alert %s: round %d sent to %s by %s", alert.id, step.round + 1,
                 step.person_id, via)  # fmt: skip
        if delivery.acked:
            how = "voice-callback" if delivery.called_back else "voice-dtmf"
            await self._acknowledge(alert.id, by=step.person_id, via=how)

    async def message(self, alert: Alert, person_id: str, *, links: bool = True) -> AlertMessage:
        """What to tell `person_id`; `links`: with acknowledgement/voicemail links (each
        is stored: only channels that show them ask for them)."""
        issuer = self.links if links else None
        return await compose_message(alert, person_id, self._config(), issuer, self._clock())

    async def record(self, alert: Alert, step: Step, event: str, detail: str) -> None:
        """What came of one step (to whom, by which channel) in the alert's events."""
        await asyncio.to_thread(
            self.store.add_event,
            alert.id,
            self._clock(),
            event,
            person_id=step.person_id,
            channel=step.channel.via,
            detail=detail,
        )

    async def _send_later(self, alert_id: str, step: Step, attempt: int, delay: float) -> None:
        """The channel was not ready: the same step again, unless someone acknowledged."""
        await asyncio.sleep(delay)
        alert = await asyncio.to_thread(self.store.get, alert_id)
        if alert is not None and alert.is_open:
            await self.send(alert, step, attempt)
