"""The `astreinte statement` scenario the tests/unit/test_statement_*.py files share:
a real YAML configuration, a migrated audit database written by the real
AuditWriter (the statement_db fixture), the CLI, and figures worked out by hand
from the rota below (not by the statement module).

May 2026, Europe/Paris (UTC+2 all month). French public holidays in May:
Fri 1 (Labour Day), Fri 8 (Victory Day), Thu 14 (Ascension), Mon 25 (Whit Monday).
Rota `primary`: weekly, handoff Fri 18:00, first handoff Fri 2026-01-02 to
alice, then bob, alternately. May 1 18:00 is 119 days (17 weeks) after that
first handoff, so bob takes over then: alice holds Apr 24-May 1, May 8-15 and
May 22-29; bob May 1-8, May 15-22 and May 29-Jun 5 (18:00 to 18:00).
Override: carol holds alice's night of Tue May 12 20:00 - Wed May 13 08:00."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from astreinte_ari import cli
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopProgress,
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from tests.unit.test_store import write_all

PARIS = ZoneInfo("Europe/Paris")
LINE = "+33180000000"

CONFIG = """\
timezone: Europe/Paris
ari: {url: "http://127.0.0.1:8088", username: astreinte, app: astreinte}
trunk: {dial: "PJSIP/{number}", caller_id: "+33180000000", allowed_prefixes: ["+336"]}
lines:
  "+33180000000":
    name: Maintenance
    team: maintenance
    after_hours:
      hops:
        - {rota: primary, timeout: 20}
        - {person: sup, label: supervisor, timeout: 20}
      finally: voicemail
teams:
  maintenance:
    people:
      alice: {name: Alice Martin, mobile: "+33611111111"}
      bob: {name: Bob Durand, mobile: "+33622222222"}
      carol: {name: Carol Petit, mobile: "+33633333333"}
      sup: {name: Sam Chef, mobile: "+33644444444"}
    rotas:
      primary: {every: week, handoff: "fri 18:00", start: 2026-01-02, people: [alice, bob]}
    overrides:
      - {rota: primary, person: carol, from: "2026-05-12 20:00", to: "2026-05-13 08:00",
         requested_by: alice, reason: "dentist"}
compensation:
  currency: EUR
  per_period: 10
  on_call_hourly: {weekday: 1.50, weekend: 2.50, holiday: 3.00}
  intervention_hourly: 30
  majorations: {night: 0.25, weekend: 0.50, holiday: 1.00}
  night: "22:00-06:00"
  holidays: FR
  rest_hours: 11
"""

PEOPLE = {
    "alice": ("Alice Martin", "+33611111111"),
    "bob": ("Bob Durand", "+33622222222"),
    "carol": ("Carol Petit", "+33633333333"),
    "sup": ("Sam Chef", "+33644444444"),
}


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def answered_call(call_id: str, rung: list[tuple[str, HopOutcome]], accept_local: str,
                  minutes: float) -> list[AuditEvent]:  # fmt: skip
    """A call as the call flow writes it: each hop in `rung` fails as given, the last
    one is accepted at `accept_local` and the conversation lasts `minutes`."""
    accepted = paris(accept_local)
    start = accepted - timedelta(seconds=10 + 30 * len(rung))
    end = accepted + timedelta(minutes=minutes)
    st, state_seq = CallState, itertools.count(1)
    events: list[AuditEvent] = [
        CallStarted(call_id, LINE, "Maintenance", "night", "+33612345678", "Client",
                    f"ch-{call_id}", start),
        StateChanged(call_id, next(state_seq), st.RECEIVED, st.ANNOUNCING, "period night",
                     start),
    ]  # fmt: skip
    for seq, (person, outcome) in enumerate(rung, start=1):
        hop_id, rung_at = f"{call_id}-hop-{seq}", start + timedelta(seconds=5 + 30 * (seq - 1))
        name, number = PEOPLE[person]
        events += [
            HopStarted(call_id, hop_id, seq, "primary" if seq == 1 else "supervisor", person,
                       name, number, rung_at),
            StateChanged(call_id, next(state_seq), st.ANNOUNCING if seq == 1 else st.DIALING,
                         st.DIALING, f"hop {seq} ringing", rung_at),
            HopProgress(hop_id, "ringing", rung_at + timedelta(seconds=1)),
        ]  # fmt: skip
        if outcome is HopOutcome.ACCEPTED:
            events += [
                HopProgress(hop_id, "answered", accepted - timedelta(seconds=4)),
                StateChanged(call_id, next(state_seq), st.DIALING, st.AGENT_PROMPT,
                             "answered", accepted - timedelta(seconds=4)),
                HopProgress(hop_id, "accepted", accepted),
                StateChanged(call_id, next(state_seq), st.AGENT_PROMPT, st.BRIDGED,
                             "accepted", accepted),
                CallAnswered(call_id, hop_id, person, accepted),
                HopEnded(hop_id, outcome, end, 16, "Normal Clearing", "1"),
                StateChanged(call_id, next(state_seq), st.BRIDGED, st.ENDED, "caller hung up",
                             end),
                CallEnded(call_id, CallOutcome.ACCEPTED, end, f"talked with {person}",
                          minutes * 60),
            ]  # fmt: skip
        else:
            events.append(HopEnded(hop_id, outcome, rung_at + timedelta(seconds=25), 17,
                                   "User busy"))  # fmt: skip
    return events


def missed_then_called_back(call_id: str, missed_local: str, back_local: str,
                            minutes: float) -> list[AuditEvent]:  # fmt: skip
    """Alice misses the call (voicemail); the alert rings her, she presses 2 and the
    caller, called back, answers at `back_local`: a `call-back` hop of the call."""
    start, answered = paris(missed_local), paris(back_local)
    first, back = f"{call_id}-hop-1", f"{call_id}-hop-2"
    name, number = PEOPLE["alice"]
    return [
        CallStarted(call_id, LINE, "Maintenance", "night", "+33612345678", "Client",
                    f"ch-{call_id}", start),
        HopStarted(call_id, first, 1, "primary", "alice", name, number, start),
        HopEnded(first, HopOutcome.NO_ANSWER, start + timedelta(seconds=20), 0, "ring timeout"),
        CallEnded(call_id, CallOutcome.VOICEMAIL, start + timedelta(seconds=60),
                  "voicemail after 1 hop", voicemail_path=f"/vm/{call_id}.wav",
                  voicemail_seconds=30.0),
        HopStarted(call_id, back, 2, "call-back", "alice", name, "+33612345678",
                   answered - timedelta(seconds=20)),
        HopProgress(back, "answered", answered),
        HopEnded(back, HopOutcome.CONNECTED, answered + timedelta(minutes=minutes), None,
                 "called back", "2"),
    ]  # fmt: skip


ACCEPTED = HopOutcome.ACCEPTED
# Alice's interventions in May: (call, accepted at (local), minutes, majoration).
ALICE_MAY = [
    ("e-may1", "2026-05-01 00:30", 10, 1.00),  # Labour Day (and night): holiday wins
    ("a-sat", "2026-05-09 14:00", 30, 0.50),  # Saturday
    ("d-asc", "2026-05-14 10:00", 15, 1.00),  # Ascension Day
    ("b-night", "2026-05-26 23:10", 20, 0.25),  # Tuesday night
    ("c-morning", "2026-05-27 06:30", 45, 0.00),  # Wednesday, after the night: no majoration
]
CALL_BACK = ("cb-night", "2026-05-28 02:00", "2026-05-28 02:10", 12, 0.25)  # Thursday night


# Test files import statement_db_fixture: their statement_db parameters shadow no import (F811).
@pytest.fixture(name="statement_db")
def statement_db_fixture(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """(configuration path, database URL) with the calls of the scenario written."""
    monkeypatch.delenv("ASTREINTE_CONFIG", raising=False)
    monkeypatch.delenv("ASTREINTE_DATABASE_URL", raising=False)
    config = tmp_path / "astreinte.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    events: list[AuditEvent] = []
    for call_id, when, minutes, _ in ALICE_MAY:
        events += answered_call(call_id, [("alice", ACCEPTED)], when, minutes)
    call_id, missed, back, minutes, _ = CALL_BACK
    events += missed_then_called_back(call_id, missed, back, minutes)
    # Alice outside May: 23:30 on April 30 and 00:10 on June 1, local time (both are
    # in May in UTC: the month is the local one).
    events += answered_call("x-april", [("alice", ACCEPTED)], "2026-04-30 23:30", 20)
    events += answered_call("x-june", [("alice", ACCEPTED)], "2026-06-01 00:10", 20)
    # Other people: bob in his week; carol (override night) busy, then the supervisor.
    events += answered_call("bob-1", [("bob", ACCEPTED)], "2026-05-05 22:00", 24)
    events += answered_call("sup-1", [("carol", HopOutcome.BUSY), ("sup", ACCEPTED)],
                            "2026-05-12 22:30", 10)  # fmt: skip
    engine = create_db_engine(db_url)
    try:
        asyncio.run(write_all(engine, events))
    finally:
        engine.dispose()
    return str(config), db_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the figures, by hand --------------------------------------------------------

PER_PERIOD, WEEKDAY_RATE, WEEKEND_RATE, HOLIDAY_RATE, INTERVENTION_RATE = 10, 1.5, 2.5, 3.0, 30

# Alice, day by day (hours on call, by kind of local day):
ALICE_WEEKDAY_H = (
    24 + 20  # Mon 11, Tue 12 until carol's override at 20:00
    + 16 + 18  # Wed 13 from 08:00 (override over), Fri 15 until 18:00
    + 6 + 3 * 24 + 18  # Fri 22 from 18:00, Tue 26 - Thu 28, Fri 29 until 18:00
)  # fmt: skip
ALICE_WEEKEND_H = 2 * 24 + 2 * 24  # Sat-Sun 9-10 and 23-24
ALICE_HOLIDAY_H = 18 + 6 + 24 + 24  # May 1 until 18:00, May 8 from 18:00, Ascension, Whit Monday
# Her week of May 8 is cut in two by the override: two periods, plus May 1 (the end
# of April's week, cut at the month's start) and May 22-29.
ALICE_PERIODS = [
    ("2026-05-01T00:00:00+02:00", "2026-05-01T18:00:00+02:00", "18.00"),
    ("2026-05-08T18:00:00+02:00", "2026-05-12T20:00:00+02:00", "98.00"),
    ("2026-05-13T08:00:00+02:00", "2026-05-15T18:00:00+02:00", "58.00"),
    ("2026-05-22T18:00:00+02:00", "2026-05-29T18:00:00+02:00", "168.00"),
]
# The call-back counts from the caller's answer to the hang-up.
ALICE_INTERVENTIONS = [*ALICE_MAY, (CALL_BACK[0], CALL_BACK[2], CALL_BACK[3], CALL_BACK[4])]
ALICE_MINUTES = sum(m for _, _, m, _ in ALICE_INTERVENTIONS)
ALICE_PAY = {
    "periods": PER_PERIOD * len(ALICE_PERIODS),
    "on_call_weekday": ALICE_WEEKDAY_H * WEEKDAY_RATE,
    "on_call_weekend": ALICE_WEEKEND_H * WEEKEND_RATE,
    "on_call_holiday": ALICE_HOLIDAY_H * HOLIDAY_RATE,
    "interventions": sum(m / 60 * INTERVENTION_RATE * (1 + maj)
                         for _, _, m, maj in ALICE_INTERVENTIONS),
}  # fmt: skip
