"""Which event the engine tells, with which text (fr/en) and id: pure, table-tested."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari.alerting.events import WEBHOOK_LINK_HOLDER, EventTeller, build_event
from astreinte_ari.alerting.model import Alert
from astreinte_ari.alerting.ports import AlertEvent
from astreinte_ari.config.loader import load_config

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config" / "astreinte.example.yaml")
OPENED = datetime(2026, 12, 1, 4, 12, tzinfo=UTC)  # 05:12 in Paris
SHIFT = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # Friday 18:00 in Paris
MISSED = Alert(
    id="3f2a9c0b1d4e", kind="missed_call", state="open", policy="missed_call",
    chain=("alice",), opened_at=OPENED, next_step=0, next_at=None, deadline_at=None,
    call_id="1111-2222", line_did="+33180000000", line_name="Maintenance", language="fr",
    caller_number="+33612345678", voicemail_path=None, team="maintenance", rota=None,
    shift_start=None, shift_end=None, parent_id=None, acked_at=None, acked_by=None,
    ack_via=None,
)  # fmt: skip
SHIFT_START = replace(
    MISSED, kind="shift_start", policy="shift_start", call_id=None, line_did=None,
    line_name=None, caller_number=None, rota="primary", shift_start=SHIFT, shift_end=None,
)  # fmt: skip


@pytest.mark.parametrize(
    ("event", "alert", "person", "via", "fr", "en"),
    [
        ("call_missed", MISSED, None, None,
         "Appel manqué sur Maintenance de +33612345678 le 01/12 05:12. [3f2a9c0b]",
         "Missed call on Maintenance from +33612345678 at 01/12 05:12. [3f2a9c0b]"),
        ("voicemail_left", MISSED, None, None,
         "Message vocal laissé sur Maintenance par +33612345678 le 01/12 05:12. [3f2a9c0b]",
         "Voicemail left on Maintenance by +33612345678 at 01/12 05:12. [3f2a9c0b]"),
        ("alert_acknowledged", MISSED, "alice", "voice-dtmf",
         "Pris en compte par Alice Martin (voice-dtmf) : appel manqué sur Maintenance de "
         "+33612345678. [3f2a9c0b]",
         "Acknowledged by Alice Martin (voice-dtmf): missed call on Maintenance from "
         "+33612345678. [3f2a9c0b]"),
        ("shift_started", SHIFT_START, "alice", "link",
         "Alice Martin a confirmé l'astreinte primary du 04/12 18:00. [3f2a9c0b]",
         "Alice Martin confirmed the primary shift starting 04/12 18:00. [3f2a9c0b]"),
        ("shift_not_acknowledged", SHIFT_START, "alice", None,
         "Prise de poste primary du 04/12 18:00 non confirmée par Alice Martin ; le remplaçant "
         "est alerté. [3f2a9c0b]",
         "The primary shift starting 04/12 18:00 was not confirmed by Alice Martin; the "
         "replacement is being alerted. [3f2a9c0b]"),
        ("alert_acknowledged", SHIFT_START, "nobody-known", "cli",
         "Pris en compte par nobody-known (cli) : prise de poste primary. [3f2a9c0b]",
         "Acknowledged by nobody-known (cli): primary shift start. [3f2a9c0b]"),
    ],
)  # fmt: skip
def test_event_texts_in_the_line_language(
    event: str, alert: Alert, person: str | None, via: str | None, fr: str, en: str
) -> None:
    told = build_event(event, alert, config=CONFIG, at=OPENED, person_id=person, via=via)
    assert told.text == fr and told.language == "fr"
    assert (told.id, told.event, told.alert_id) == (f"3f2a9c0b1d4e-{event}", event, alert.id)
    english = build_event(
        event, replace(alert, language="en"), config=CONFIG, at=OPENED, person_id=person, via=via
    )
    assert english.text == en
    # The same event built again (a retry, another node) has the same id.
    assert build_event(event, alert, config=CONFIG, at=SHIFT).id == told.id


def test_caller_is_data_in_the_event_and_unknown_in_the_text() -> None:
    hostile = replace(MISSED, caller_number="<script>alert(1)</script>")
    told = build_event("call_missed", hostile, config=CONFIG, at=OPENED)
    assert told.caller == "<script>alert(1)</script>"  # kept as data for the receiver
    assert "script" not in told.text and "de inconnu le" in told.text


class Sink:
    def __init__(self, wanted: set[str], fail: bool = False) -> None:
        self.wanted, self.fail = wanted, fail
        self.events: list[AlertEvent] = []

    def wants(self, event: str) -> bool:
        return event in self.wanted

    def publish(self, event: AlertEvent) -> None:
        if self.fail:
            raise RuntimeError("sink broken")
        self.events.append(event)


class Links:
    def __init__(self) -> None:
        self.created: list[tuple[str, str, str]] = []

    def create(
        self, purpose: str, alert_id: str, person_id: str, expires: datetime, now: datetime
    ) -> str:
        self.created.append((purpose, alert_id, person_id))
        return "LinkId42"

    def resolve(self, link_id: str, purpose: str, now: datetime) -> None:
        return None


def test_teller_builds_only_wanted_events_with_a_voicemail_link() -> None:
    sink, links = Sink({"voicemail_left"}), Links()
    teller = EventTeller(sink, links)
    with_message = replace(MISSED, voicemail_path="/var/spool/x.wav")
    asyncio.run(teller.tell("call_missed", MISSED, config=CONFIG, now=OPENED))
    assert sink.events == [] and links.created == []  # nobody wants it: not even built
    asyncio.run(teller.tell("voicemail_left", with_message, config=CONFIG, now=OPENED))
    [told] = sink.events
    assert told.link == "https://astreinte.fromagerie-durand.fr/vm/LinkId42"
    assert links.created == [("vm", MISSED.id, WEBHOOK_LINK_HOLDER)]


def test_a_broken_sink_never_reaches_the_alert(caplog: pytest.LogCaptureFixture) -> None:
    teller = EventTeller(Sink({"call_missed"}, fail=True), None)
    asyncio.run(teller.tell("call_missed", MISSED, config=CONFIG, now=OPENED))  # no raise
    assert "event call_missed could not be built" in caplog.text
    asyncio.run(EventTeller(None, None).tell("call_missed", MISSED, config=CONFIG, now=OPENED))
