"""`astreinte calls show`: the merged timeline (pure) and its rich rendering."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from astreinte_ari.adapters.store.queries import CallDetail, HopRecord, TransitionRecord
from astreinte_ari.cli.call_timeline import build_timeline, print_call

T0 = datetime(2026, 5, 9, 21, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def hop(seq: int, **times: float | None) -> HopRecord:
    """A hop started at `started` seconds; other times in seconds, or None."""
    fields: dict[str, datetime | None] = dict.fromkeys(
        ("ringing_at", "answered_at", "accepted_at", "ended_at")
    )
    for name, seconds in times.items():
        if name != "started":
            fields[f"{name}_at"] = None if seconds is None else at(seconds)
    return HopRecord(
        id=f"hop-{seq}", seq=seq, label=f"level{seq}", person_id=f"p{seq}",
        person_name=f"Person {seq}", number=f"+3361000000{seq}",
        started_at=at(times.get("started") or 0), outcome=None, cause_code=None,
        cause_text=None, dtmf=None, **fields,
    )  # fmt: skip


def transition(seq: int, seconds: float, to_state: str, reason: str = "") -> TransitionRecord:
    return TransitionRecord(seq, f"s{seq - 1}", to_state, reason, at(seconds))


def call(**changes: object) -> CallDetail:
    base = CallDetail(
        id="c-1", did="+33180000000", line_name="Maintenance", period="night",
        caller_number="+33612345678", caller_name="ACME", channel_id="ch-1",
        started_at=T0, answered_at=None, ended_at=None, outcome=None, outcome_detail=None,
        accepted_hop_id=None, accepted_person_id=None, talk_seconds=None,
        voicemail_path=None, voicemail_seconds=None, hops=(), transitions=(),
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


BUSY_THEN_ACCEPTED = call(
    answered_at=at(20), ended_at=at(80), outcome="accepted", outcome_detail="talked",
    accepted_hop_id="hop-2", accepted_person_id="p2", talk_seconds=60.0,
    hops=(
        replace(hop(1, started=5, ended=7), outcome="busy", cause_code=17,
                cause_text="User busy"),
        replace(hop(2, started=7, ringing=8, answered=15, accepted=19, ended=80),
                outcome="accepted", dtmf="1", cause_code=16, cause_text="Normal Clearing"),
    ),
    transitions=(transition(1, 0.5, "announcing"), transition(2, 5.2, "dialing"),
                 transition(3, 15.1, "agent_prompt"), transition(4, 20, "bridged"),
                 transition(5, 80, "ended", "caller hung up")),
)  # fmt: skip

# Everything at the same instant: the order is the call flow's emission order.
ALL_AT_ONCE = call(
    answered_at=T0, ended_at=T0, outcome="accepted", accepted_person_id="p1", talk_seconds=0.0,
    hops=(replace(hop(1, started=0, ringing=0, answered=0, accepted=0, ended=0),
                  outcome="accepted"),
          replace(hop(2, started=0, ended=0), outcome="cancelled")),
    transitions=(transition(1, 0, "dialing"), transition(2, 0, "bridged")),
)  # fmt: skip

# Still ringing the second hop: nothing has ended, and nothing is invented.
IN_PROGRESS = call(
    hops=(replace(hop(1, started=3, ringing=4, ended=30), outcome="no_answer", cause_code=0,
                  cause_text="ring timeout"),
          hop(2, started=30, ringing=31)),
    transitions=(transition(1, 1, "announcing"), transition(2, 3, "dialing")),
)  # fmt: skip

# Stored out of time order (a transition written late, hop rows by seq): sorted by time.
OUT_OF_ORDER = call(
    ended_at=at(50), outcome="voicemail", outcome_detail="after 1 hop",
    voicemail_path="/vm/c-1.wav", voicemail_seconds=12.0,
    hops=(replace(hop(1, started=10, ended=25), outcome="no_answer"),),
    transitions=(transition(1, 30, "voicemail_greeting"), transition(2, 2, "dialing"),
                 transition(3, 50, "ended")),
)  # fmt: skip


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        pytest.param(BUSY_THEN_ACCEPTED, [
            (0.0, "call", "started", "+33612345678 (ACME) called Maintenance (+33180000000), "
                                     "period night"),
            (0.5, "state", "s0 -> announcing", ""),
            (5.0, "hop #1", "rung", "level1: Person 1 [p1] +33610000001"),
            (5.2, "state", "s1 -> dialing", ""),
            (7.0, "hop #1", "ended: busy", "cause 17 User busy"),
            (7.0, "hop #2", "rung", "level2: Person 2 [p2] +33610000002"),
            (8.0, "hop #2", "ringing", ""),
            (15.0, "hop #2", "answered", ""),
            (15.1, "state", "s2 -> agent_prompt", ""),
            (19.0, "hop #2", "accepted", "dtmf 1"),
            (20.0, "state", "s3 -> bridged", ""),
            (20.0, "call", "answered", "connected to p2 after 20s"),
            (80.0, "hop #2", "ended: accepted", "cause 16 Normal Clearing, dtmf 1"),
            (80.0, "state", "s4 -> ended", "caller hung up"),
            (80.0, "call", "ended: accepted", "talked; talk 1m00s"),
        ], id="merged-and-ordered"),
        pytest.param(ALL_AT_ONCE, [
            (0.0, "call", "started", "+33612345678 (ACME) called Maintenance (+33180000000), "
                                     "period night"),
            (0.0, "hop #1", "rung", "level1: Person 1 [p1] +33610000001"),
            (0.0, "hop #1", "ringing", ""),
            (0.0, "hop #1", "answered", ""),
            (0.0, "hop #1", "accepted", ""),
            (0.0, "hop #1", "ended: accepted", ""),
            (0.0, "hop #2", "rung", "level2: Person 2 [p2] +33610000002"),
            (0.0, "hop #2", "ended: cancelled", ""),
            (0.0, "state", "s0 -> dialing", ""),
            (0.0, "state", "s1 -> bridged", ""),
            (0.0, "call", "answered", "connected to p1 after 0s"),
            (0.0, "call", "ended: accepted", "talk 0s"),
        ], id="equal-times-are-stable"),
        pytest.param(IN_PROGRESS, [
            (0.0, "call", "started", "+33612345678 (ACME) called Maintenance (+33180000000), "
                                     "period night"),
            (1.0, "state", "s0 -> announcing", ""),
            (3.0, "hop #1", "rung", "level1: Person 1 [p1] +33610000001"),
            (3.0, "state", "s1 -> dialing", ""),
            (4.0, "hop #1", "ringing", ""),
            (30.0, "hop #1", "ended: no_answer", "cause 0 ring timeout"),
            (30.0, "hop #2", "rung", "level2: Person 2 [p2] +33610000002"),
            (31.0, "hop #2", "ringing", ""),
        ], id="in-progress-no-end"),
        pytest.param(OUT_OF_ORDER, [
            (0.0, "call", "started", "+33612345678 (ACME) called Maintenance (+33180000000), "
                                     "period night"),
            (2.0, "state", "s1 -> dialing", ""),
            (10.0, "hop #1", "rung", "level1: Person 1 [p1] +33610000001"),
            (25.0, "hop #1", "ended: no_answer", ""),
            (30.0, "state", "s0 -> voicemail_greeting", ""),
            (50.0, "state", "s2 -> ended", ""),
            (50.0, "call", "voicemail", "/vm/c-1.wav (12s)"),
            (50.0, "call", "ended: voicemail", "after 1 hop"),
        ], id="sorted-by-time-voicemail"),
    ],
)  # fmt: skip
def test_build_timeline(detail: CallDetail, expected: list[tuple[float, str, str, str]]) -> None:
    entries = build_timeline(detail)
    assert [(e.offset_seconds, e.source, e.event, e.detail) for e in entries] == expected
    assert all(e.at == detail.started_at + timedelta(seconds=e.offset_seconds) for e in entries)
    ended = {e.source: e.outcome for e in entries if e.event.startswith("ended")}
    assert ended == {
        **{f"hop #{h.seq}": h.outcome for h in detail.hops if h.ended_at is not None},
        **({"call": detail.outcome} if detail.ended_at is not None else {}),
    }


def _render(detail: CallDetail) -> str:
    out = io.StringIO()
    print_call(detail, out)
    return out.getvalue()


@pytest.fixture
def piped(monkeypatch: pytest.MonkeyPatch) -> None:
    """No environment override that would make rich treat a pipe as a terminal."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


INJECTIONS = {
    "caller_name": "[bold red]x[/]",
    "caller_number": "[link=https://evil.example]+33612345678[/link]",
    "dtmf": "[blink]1[/blink]:smile:",
}
# Where each value is shown: caller in the header and the "started" entry; the DTMF
# in the hops table and the hop's "accepted" and "ended" entries.
SHOWN_TIMES = {"caller_name": 2, "caller_number": 2, "dtmf": 3}


def _injected() -> CallDetail:
    accepted = replace(hop(1, started=2, answered=5, accepted=6, ended=9), outcome="accepted",
                       dtmf=INJECTIONS["dtmf"])  # fmt: skip
    return replace(BUSY_THEN_ACCEPTED, caller_name=INJECTIONS["caller_name"],
                   caller_number=INJECTIONS["caller_number"], hops=(accepted,))  # fmt: skip


@pytest.mark.usefixtures("piped")
def test_caller_text_is_never_markup_when_piped() -> None:
    text = _render(_injected())
    assert "\x1b" not in text
    for field, value in INJECTIONS.items():
        assert text.count(value) == SHOWN_TIMES[field], field  # literally, brackets and all
    assert "😄" not in text


def test_caller_text_is_never_markup_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("TTY_COMPATIBLE", "1"), ("COLUMNS", "400"), ("TERM", "xterm")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = _render(_injected())
    assert "\x1b[32maccepted" in text  # a terminal gets colours...
    for field, value in INJECTIONS.items():
        assert text.count(value) == SHOWN_TIMES[field], field  # ...but caller data stays text
    assert "\x1b]8;" not in text  # no hyperlink escape
    assert "\x1b[1;31m" not in text and "\x1b[5m" not in text  # no bold red, no blink


@pytest.mark.usefixtures("piped")
def test_long_caller_id_is_printed_whole_on_one_line() -> None:
    long_number = "+33" + "0123456789" * 50  # 503 characters, no space to wrap at
    text = _render(replace(BUSY_THEN_ACCEPTED, caller_number=long_number, caller_name=""))
    header = [line for line in text.splitlines() if line.startswith("caller")]
    assert header == [f"caller     {long_number}"]
    started = [line for line in text.splitlines() if " started " in line]
    assert len(started) == 1 and f"{long_number} called Maintenance" in started[0]
    assert all(line == line.rstrip() for line in text.splitlines())


@pytest.mark.usefixtures("piped")
def test_in_progress_call_header_and_hops() -> None:
    text = _render(IN_PROGRESS)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "outcome (in progress)" in lines
    assert "wait/talk wait -, talk -" in lines
    assert "2 level2 Person 2 [p2] +33610000002 (in progress) - - -" in lines
    assert not any(line.startswith(("taken by", "voicemail")) for line in lines)


@pytest.mark.usefixtures("piped")
def test_a_recorded_conversation_in_the_header() -> None:
    recorded = replace(
        BUSY_THEN_ACCEPTED, recording_path="/rec/c-1.conversation.wav", recording_seconds=59.5
    )
    lines = [" ".join(line.split()) for line in _render(recorded).splitlines()]
    assert "recording /rec/c-1.conversation.wav (1m00s)" in lines
    plain = [" ".join(line.split()) for line in _render(BUSY_THEN_ACCEPTED).splitlines()]
    assert not any(line.startswith("recording") for line in plain)
