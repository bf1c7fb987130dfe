"""What alerting needs from the outside world, declared here and built elsewhere.

The composition root (app/) builds the adapters that fill these ports: the
notifiers (adapters/notify/), the alert tables (adapters/store/alerts.py) and
the wake-ups (adapters/scheduler/). Nothing under alerting/ builds one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from astreinte_ari.alerting.model import Acknowledgement, Alert, ShiftOverride

# -- notifiers ------------------------------------------------------------------------------

# Called by an interactive channel the moment the person takes the alert (the
# argument says how: "voice-dtmf", "voice-callback"), not when the call ends.
Acknowledge = Callable[[str], Awaitable[None]]
# Called by an interactive channel at each step of its call ("call ringing ->
# reading: answered by ..."), so that the alert's history shows the whole call.
Progress = Callable[[str], None]


class NotifyError(Exception):
    """The notification could not be delivered (after the channel's own retries).

    `retry_after`: the channel was not ready (e.g. telephony reconnecting after a
    restart): the same step is worth trying again in that many seconds.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Recipient:
    person_id: str
    name: str
    mobile: str
    email: str | None


@dataclass(frozen=True, slots=True)
class AlertMessage:
    alert_id: str
    kind: str  # missed_call | shift_start | shift_cover
    subject: str
    text: str  # short plain text (SMS body, email body head)
    language: str
    line_name: str | None = None
    caller_number: str | None = None  # digits-only after validation, else None
    call_id: str | None = None
    at: datetime | None = None
    voicemail: Path | None = None
    ack_url: str | None = None
    voicemail_url: str | None = None
    can_call_back: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened; `acked` / `called_back` only come from interactive channels."""

    detail: str
    acked: bool = False
    called_back: bool = False


class Notifier(Protocol):
    channel: str

    async def send(
        self,
        to: Recipient,
        message: AlertMessage,
        acknowledge: Acknowledge | None = None,
        progress: Progress | None = None,
    ) -> Delivery:
        """Deliver or raise NotifyError."""
        ...


# -- events for webhooks (ticketing tools, chat rooms) ------------------------------------


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """Something a ticketing tool or a chat room is told (docs/alerts.md "Webhooks").

    `id` is the idempotency key: derived from the alert and the event, so the same
    event told twice (a retry, another node) carries the same id. `caller` is what
    the caller's phone sent: untrusted data. `text` is a short human text in the
    line's language, as in the SMS.
    """

    event: str  # call_missed | voicemail_left | alert_acknowledged | shift_started | ...
    id: str
    at: datetime
    alert_id: str
    alert_kind: str
    language: str
    text: str
    line: str | None = None
    did: str | None = None
    call_id: str | None = None
    caller: str | None = None
    link: str | None = None  # voicemail_left: the message (a stored link, like the SMS's)
    team: str | None = None
    rota: str | None = None
    person_id: str | None = None
    person: str | None = None
    via: str | None = None
    shift_start: datetime | None = None
    shift_end: datetime | None = None


class EventSink(Protocol):
    """Takes events to tell outside (the webhooks); never blocks nor raises: delivery,
    retries included, happens in the background."""

    def wants(self, event: str) -> bool:
        """Does some webhook subscribe to `event` (else it is not even built)?"""
        ...

    def publish(self, event: AlertEvent) -> None: ...


# -- the alert tables -----------------------------------------------------------------------


class AlertRepository(Protocol):
    """The alerts, their events and the recorded replacements (synchronous: the
    engine calls it through asyncio.to_thread)."""

    def insert_alert(self, values: dict[str, object]) -> None: ...

    def get(self, alert_id: str) -> Alert | None:
        """By id, or by an unambiguous prefix of at least 4 characters."""
        ...

    def find_shift(self, kind: str, team: str, rota: str, start: datetime) -> Alert | None: ...

    def find_for_call(self, kind: str, call_id: str) -> Alert | None:
        """The alert of that kind already opened for a call, if any."""
        ...

    def update(self, alert_id: str, *, only_if_open: bool = False, **values: object) -> bool:
        """False when nothing was updated (e.g. already acknowledged)."""
        ...

    def add_event(
        self,
        alert_id: str,
        at: datetime,
        event: str,
        *,
        person_id: str | None = None,
        channel: str | None = None,
        detail: str | None = None,
    ) -> None: ...

    def acknowledge(self, ack: Acknowledgement) -> bool:
        """Write `ack` in one transaction if the alert is still open; False otherwise."""
        ...

    def overrides(self, since: datetime) -> list[ShiftOverride]:
        """Replacements still in force after `since`, oldest first."""
        ...


# -- wake-ups -------------------------------------------------------------------------------

Wake = Callable[[str], Awaitable[None]]


class Scheduler(Protocol):
    """Wakes alerts up at a given time, across restarts; runs periodic chores.

    The alert's state lives in the alert tables: a wake-up only says "look at
    this alert now" (AlertEngine.run_due).
    """

    def start(self, wake: Wake) -> None:
        """From now on every wake-up that falls due calls `wake(alert_id)`."""
        ...

    def wake_at(self, alert_id: str, at: datetime) -> None:
        """The alert's one pending wake-up is at `at` (replacing any earlier one)."""
        ...

    def cancel(self, alert_id: str) -> None:
        """No wake-up for this alert any more (none pending is fine)."""
        ...

    def every(
        self,
        name: str,
        interval: timedelta,
        chore: Callable[[], Awaitable[object]],
        *,
        every_node: bool = False,
    ) -> None:
        """Run `chore` every `interval` while the process runs (not persisted); on the
        cluster's leader only unless `every_node` (a refresh of this process's state)."""
        ...

    def leads(self) -> bool:
        """Does this process run the scheduled work now (the cluster's leader; always
        true for a single node)?"""
        ...

    def daily(
        self,
        name: str,
        hour: int,
        minute: int,
        timezone: str,
        chore: Callable[[], Awaitable[object]],
    ) -> None:
        """Run `chore` every day at hour:minute in `timezone` (not persisted)."""
        ...

    def cancel_chores(self, prefix: str) -> None:
        """Remove the periodic chores whose name starts with `prefix`."""
        ...

    def pending(self) -> int:
        """How many wake-ups are waiting."""
        ...

    async def fire_due(self, now: datetime) -> int:
        """Run at once the wake-ups due by `now` (tests drive time this way)."""
        ...

    def stop(self) -> None: ...


class Closable(Protocol):
    """An edge alerting holds and closes with itself (the link endpoint)."""

    async def close(self) -> None: ...
