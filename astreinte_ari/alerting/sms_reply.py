"""Acknowledging by SMS reply: what a reply means, from whom, and what it acknowledges.

Every alert SMS ends with its short code, the alert id's first 8 characters in
brackets ("... [3f9c0a12]"). A reply from a person's configured mobile:

- "1", "OK" or "ACK" (any case, spaces and a final "." or "!" ignored)
  acknowledges every open alert of theirs that was sent to them (any channel);
- the code ("3f9c0a12", "[3f9c0a12]", "OK 3f9c0a12") acknowledges that alert
  only, if they are in its chain (escalation included);
- anything else is not understood: a help SMS goes back (`help_reply`).

The sender's number is untrusted input: normalised to E.164, then matched
against the live configuration's mobiles. An unknown sender is ignored, logged
and audited without the text, and never answered (no SMS relay for strangers).
Acknowledgements go through AlertEngine.ack, like a link's.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from astreinte_ari.alerting.engine import AlertEngine
from astreinte_ari.alerting.model import Alert
from astreinte_ari.alerting.ports import AlertMessage, NotifyError, Recipient
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

VIA = "sms-reply"
ACK_WORDS = frozenset({"1", "OK", "ACK"})
CODE_LEN = 8  # messages.subject_and_text: "[<alert id[:8]>]"
_CODE_RE = re.compile(rf"^(?:(?:OK|ACK)\s*)?\[?([0-9a-f]{{{CODE_LEN}}})\]?$", re.IGNORECASE)
_E164_RE = re.compile(r"^\+[1-9]\d{5,14}$")
_SEPARATORS_RE = re.compile(r"[\s().\-/]")
HELP_TEXT = (
    "Astreinte : repondez 1, OK ou le code [xxxxxxxx] de l'alerte pour l'acquitter. "
    "Reply 1, OK or the alert's [code] to acknowledge."
)
NOTHING_OPEN_TEXT = "Astreinte : aucune alerte ouverte pour vous. / No open alert for you."
UNKNOWN_CODE_TEXT = (
    "Astreinte : code inconnu ou alerte deja traitee. / Unknown code or alert already handled."
)


def normalise_number(raw: str, national_prefix: str | None = None) -> str | None:
    """The sender as E.164 ("+33612345678"), or None if it is not a phone number."""
    number = _SEPARATORS_RE.sub("", raw.strip()[:40])
    if number.startswith("00"):
        number = "+" + number[2:]
    elif number.startswith("0") and national_prefix:
        number = national_prefix + number[1:]
    elif number.isdigit():  # "33612345678": gateways often drop the "+"
        number = "+" + number
    return number if _E164_RE.match(number) else None


@dataclass(frozen=True, slots=True)
class Reply:
    """What a reply asks: every open alert ("all"), one alert ("code"), or nothing."""

    kind: str  # "all" | "code" | "other"
    code: str | None = None


def parse_reply(text: str) -> Reply:
    words = " ".join(text.split()).rstrip(".!").strip()
    if words.upper() in ACK_WORDS:
        return Reply("all")
    match = _CODE_RE.match(words)
    if match:
        return Reply("code", match.group(1).lower())
    return Reply("other")


def people_with_mobile(config: AppConfig, number: str) -> list[tuple[str, str]]:
    """(team, person id) of every person whose mobile is `number`."""
    return [
        (team_name, person_id)
        for team_name, team in config.teams.items()
        for person_id, person in team.people.items()
        if person.mobile == number
    ]


class ReplyAlerts(Protocol):
    """The alert queries a reply needs (adapters/store/alerts.py)."""

    def get(self, alert_id: str) -> Alert | None: ...

    def open_alerts_notified_to(self, team: str, person_id: str) -> list[Alert]: ...


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """acked | nothing_open | unknown_code | not_understood | unknown_sender | bad_sender"""

    result: str
    acked: tuple[str, ...] = ()


# (kind, subject, payload) into the audit chain: ignored replies, never their text.
NoteIgnored = Callable[[str, str, dict[str, object]], None]


class SmsReplies:
    def __init__(
        self,
        engine: AlertEngine,
        alerts: ReplyAlerts,
        note_ignored: NoteIgnored,
        *,
        national_prefix: str | None = None,
        help_reply: bool = True,
    ) -> None:
        self.engine = engine
        self.alerts = alerts
        self.note_ignored = note_ignored
        self.national_prefix = national_prefix
        self.help_reply = help_reply
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, sender: str, text: str) -> ReplyOutcome:
        number = normalise_number(sender, self.national_prefix)
        if number is None:
            log.warning("inbound SMS ignored: the sender is not a phone number")
            await self._note("bad_sender", "unknown", {"from_chars": len(sender)})
            return ReplyOutcome("bad_sender")
        people = people_with_mobile(self.engine.config, number)
        if not people:
            log.warning("inbound SMS from unknown number %s ignored", number)
            await self._note("unknown_sender", number, {"from": number})
            return ReplyOutcome("unknown_sender")
        reply = parse_reply(text)
        if reply.kind == "other":
            log.info("SMS reply from %s not understood (%d characters)", people[0][1], len(text))
            await self._note("not_understood", number, {"from": number, "person": people[0][1]})
            self._answer(number, people, HELP_TEXT)
            return ReplyOutcome("not_understood")
        targets = await self._targets(reply, people)
        detail = f"acknowledged by SMS reply from {number}"
        acked = []
        for alert, person_id in targets:
            done = await self.engine.ack(alert.id, by=person_id, via=VIA, detail=detail)
            if done is not None:
                acked.append(done.id)
        if acked:
            return ReplyOutcome("acked", tuple(acked))
        result = "unknown_code" if reply.kind == "code" else "nothing_open"
        await self._note(result, number, {"from": number, "person": people[0][1]})
        self._answer(number, people, UNKNOWN_CODE_TEXT if reply.code else NOTHING_OPEN_TEXT)
        return ReplyOutcome(result)

    async def _targets(
        self, reply: Reply, people: list[tuple[str, str]]
    ) -> list[tuple[Alert, str]]:
        """(alert, acknowledging person) for the reply."""
        if reply.code is not None:
            alert = await asyncio.to_thread(self.alerts.get, reply.code)
            if alert is None or alert.state != "open" or not alert.id.startswith(reply.code):
                return []
            for team, person_id in people:
                if alert.team == team and person_id in alert.chain:
                    return [(alert, person_id)]
            return []
        found: list[tuple[Alert, str]] = []
        for team, person_id in people:
            mine = await asyncio.to_thread(self.alerts.open_alerts_notified_to, team, person_id)
            found += [(alert, person_id) for alert in mine]
        return found

    async def _note(self, result: str, subject: str, payload: dict[str, object]) -> None:
        try:
            await asyncio.to_thread(self.note_ignored, f"sms.reply_{result}", subject, payload)
        except Exception:  # the database is away: the log line above stays
            log.exception("inbound SMS (%s) not recorded in the audit trail", result)

    def _answer(self, number: str, people: list[tuple[str, str]], text: str) -> None:
        """A short SMS back through the gateway, in the background (the gateway is
        waiting for our HTTP answer); only ever to a configured person's mobile."""
        notifier = self.engine.notifiers.get("sms")
        if not self.help_reply or notifier is None:
            return
        team, person_id = people[0]
        recipient = self.engine.recipient(team, person_id) or Recipient(
            person_id, person_id, number, None
        )
        message = AlertMessage(alert_id="-", kind="sms_help", subject="", text=text, language="fr")

        async def send() -> None:
            try:
                await notifier.send(recipient, message)
            except NotifyError as exc:
                log.warning("help SMS to %s not sent: %s", person_id, exc)

        task = asyncio.ensure_future(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
