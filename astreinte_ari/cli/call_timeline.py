"""`astreinte calls show ID`: one call as a readable timeline (rich).

`build_timeline` is pure: it merges the call's own events, every hop's
progress and every state transition into one chronological list.
`print_call` renders a header, a hops table and that timeline with rich.

Caller number, caller name and DTMF come from the network: they only ever go
into `rich.text.Text` objects (never parsed as markup) and the console parses
no markup, emoji or highlighting either.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TextIO

from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from astreinte_ari.adapters.store.queries import CallDetail, HopRecord
from astreinte_ari.cli.formatting import caller_label, duration, local_time

# Piped output is never wrapped: at least this wide, wider if a value needs it.
PIPE_MIN_WIDTH = 120

_GOOD = frozenset({"accepted", "connected", "test_passed"})
_BAD = frozenset({"failed", "cancelled", "refused", "no_one", "test_failed"})


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    offset_seconds: float  # from the call's start
    source: str  # "call", "hop #2", "state"
    event: str  # "started", "ringing", "ended: busy", "dialing -> agent_prompt"...
    detail: str = ""
    outcome: str | None = None  # set on "ended" entries, to colour them


def hop_cause(hop: HopRecord) -> str:
    """Q.850 cause code and text ("17 User busy"), or our own reason ("no key pressed")."""
    parts = [str(hop.cause_code)] if hop.cause_code is not None else []
    if hop.cause_text:
        parts.append(hop.cause_text)
    return " ".join(parts)


def ring_seconds(hop: HopRecord) -> float | None:
    """From dialling the agent until they answered, or until the hop ended unanswered."""
    until = hop.answered_at or hop.ended_at
    return None if until is None else (until - hop.started_at).total_seconds()


def build_timeline(call: CallDetail) -> list[TimelineEntry]:
    """Every hop, transition and call event, by time.

    Equal times keep the order the call flow emits them in: call start, hops
    (by seq, each in its life order), state transitions, then the call's
    answer, voicemail and end. Events that have not happened yet are left out.
    """
    start = call.started_at
    entries: list[TimelineEntry] = []

    def add(at: datetime | None, source: str, event: str, detail: str = "",
            outcome: str | None = None) -> None:  # fmt: skip
        if at is not None:
            offset = (at - start).total_seconds()
            entries.append(TimelineEntry(at, offset, source, event, detail, outcome))

    caller = caller_label(call.caller_number, call.caller_name)
    add(start, "call", "started", f"{caller} called {call.line_name} ({call.did}), "
                                  f"period {call.period}")  # fmt: skip
    for hop in call.hops:
        source = f"hop #{hop.seq}"
        dtmf = f"dtmf {hop.dtmf}" if hop.dtmf else ""
        add(hop.started_at, source, "rung",
            f"{hop.label}: {hop.person_name} [{hop.person_id}] {hop.target_text}")  # fmt: skip
        add(hop.ringing_at, source, "ringing")
        add(hop.answered_at, source, "answered")
        add(hop.accepted_at, source, "accepted", dtmf)
        # "cause 17 User busy" for a Q.850 cause; our own reasons read as they are.
        cause = f"cause {hop_cause(hop)}" if hop.cause_code is not None else hop_cause(hop)
        ended = ", ".join(part for part in (cause, dtmf) if part)
        add(hop.ended_at, source, f"ended: {hop.outcome or '?'}", ended, hop.outcome)
    for tr in call.transitions:
        add(tr.at, "state", f"{tr.from_state} -> {tr.to_state}", tr.reason)
    wait = duration(call.wait_seconds)
    add(call.answered_at, "call", "answered",
        f"connected to {call.accepted_person_id or '?'} after {wait}")  # fmt: skip
    if call.voicemail_path:
        length = duration(call.voicemail_seconds)
        add(call.ended_at, "call", "voicemail", f"{call.voicemail_path} ({length})")
    talk = f"talk {duration(call.talk_seconds)}" if call.talk_seconds is not None else ""
    summary = "; ".join(part for part in (call.outcome_detail, talk) if part)
    add(call.ended_at, "call", f"ended: {call.outcome or '?'}", summary, call.outcome or "?")
    return sorted(entries, key=lambda entry: entry.at)  # sorted() is stable


# -- rendering --------------------------------------------------------------------


def outcome_style(outcome: str | None) -> str:
    if outcome is None:
        return "dim"
    if outcome in _GOOD:
        return "green"
    return "red" if outcome in _BAD else "yellow"


def _offset(seconds: float) -> str:
    return f"{seconds:+.1f}s"  # a clock step back shows as a negative offset


def _clock(call_start: datetime, at: datetime, zone: tzinfo | None) -> str:
    """Local wall-clock time; with the date when it is not the call's first day."""
    local, first_day = at.astimezone(zone), call_start.astimezone(zone).date()
    return f"{local:%H:%M:%S}" if local.date() == first_day else f"{local:%Y-%m-%d %H:%M:%S}"


def _header(call: CallDetail, zone: tzinfo | None) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    outcome = Text()
    outcome.append(call.outcome or "(in progress)", style=outcome_style(call.outcome))
    if call.outcome_detail:
        outcome.append(f" - {call.outcome_detail}")
    rows: list[tuple[str, Text]] = [
        ("call", Text(call.id)),
        ("line", Text(f"{call.line_name} ({call.did})")),
        ("caller", Text(caller_label(call.caller_number, call.caller_name))),
        ("period", Text(call.period)),
        ("started", Text(f"{local_time(call.started_at, zone)} ({zone or 'local time'})")),
        ("outcome", outcome),
        ("wait/talk", Text(f"wait {duration(call.wait_seconds)}, "
                           f"talk {duration(call.talk_seconds)}")),
    ]  # fmt: skip
    if call.accepted_person_id:
        seq = next((h.seq for h in call.hops if h.id == call.accepted_hop_id), None)
        hop = f"hop #{seq}" if seq is not None else f"hop {call.accepted_hop_id}"
        rows.append(("taken by", Text(f"{call.accepted_person_id} ({hop})")))
    if call.voicemail_path:
        rows.append(("voicemail", Text(
            f"{call.voicemail_path} ({duration(call.voicemail_seconds)})")))  # fmt: skip
    if call.recording_path:  # a recorded conversation (record_calls); reading it is audited
        rows.append(("recording", Text(
            f"{call.recording_path} ({duration(call.recording_seconds)})")))  # fmt: skip
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def _table(title: str, columns: Sequence[str], right: Sequence[str] = ()) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold", justify="right" if name in right else "left")
    return table


def _hops_table(call: CallDetail) -> Table:
    columns = ("#", "label", "person", "target", "outcome", "cause", "dtmf", "ring")
    table = _table(f"hops ({len(call.hops)})", columns, right=("#", "ring"))
    for hop in call.hops:
        table.add_row(
            Text(str(hop.seq)),
            Text(hop.label),
            Text(f"{hop.person_name} [{hop.person_id}]"),
            Text(hop.target_text),
            Text(hop.outcome or "(in progress)", style=outcome_style(hop.outcome)),
            Text(hop_cause(hop) or "-"),
            Text(hop.dtmf or "-"),
            Text(duration(ring_seconds(hop))),
        )
    return table


def _timeline_table(call: CallDetail, zone: tzinfo | None) -> Table:
    columns = ("offset", "time", "source", "event", "detail")
    title = f"timeline (offset from the call's start, {zone or 'local time'})"
    table = _table(title, columns, ("offset",))
    for entry in build_timeline(call):
        event_style = outcome_style(entry.outcome) if entry.outcome is not None else ""
        table.add_row(
            Text(_offset(entry.offset_seconds)),
            Text(_clock(call.started_at, entry.at, zone)),
            Text(entry.source),
            Text(entry.event, style=event_style),
            Text(entry.detail),
        )
    return table


def call_renderables(call: CallDetail, zone: tzinfo | None = None) -> list[RenderableType]:
    return [_header(call, zone), Text(""), _hops_table(call), _timeline_table(call, zone)]


def print_call(call: CallDetail, out: TextIO, zone: tzinfo | None = None) -> None:
    """Coloured for a terminal; plain, unwrapped and without trailing blanks when piped.
    Times in `zone` (the configuration's), the machine's zone when None."""
    parts = call_renderables(call, zone)
    terminal = Console(file=out, highlight=False, markup=False, emoji=False)
    if terminal.is_terminal:
        for part in parts:
            terminal.print(part)
        return
    # Wide enough that no cell wraps: a pipe or a file has no width to respect.
    options = terminal.options.update_width(10**6)
    widest = max(Measurement.get(terminal, options, part).maximum for part in parts)
    buffer = io.StringIO()
    plain = Console(file=buffer, width=max(PIPE_MIN_WIDTH, widest), color_system=None,
                    highlight=False, markup=False, emoji=False)  # fmt: skip
    for part in parts:
        plain.print(part)
    text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
    out.write(text.rstrip("\n") + "\n")
