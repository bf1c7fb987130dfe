"""The notifier interface and the message every channel renders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

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
