"""Compare what sipp placed (the wire) with the audit trail, call by call.

The bar (DESIGN.md §5): every call placed appears exactly once in the trail,
with its true outcome and times. `TrailCheck` matches each caller leg to the
trail rows with its caller number (as the trail stores it: safe_text-escaped,
maybe cut), pairs them by time when a number repeats, then checks

- exactly one row per call placed, no row left over in the window (extra),
- started_at within ±tolerance of the INVITE,
- ended_at set (not open) and within ±tolerance of the wire's end (BYE,
  CANCEL or error final response),
- the outcome among the expected ones; for an abandoned call the state the
  caller left in (the last transition's from_state); who accepted it,
- answered_at within ±tolerance of the accepting agent leg's key press (or
  its 200 OK when no key is involved), when agent legs are given; every key
  press of those legs must be some accepted call's (agents_must_match).

ALL mismatches are collected and raised as one AssertionError, one line per
problem with the wire's and the trail's view of the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import unquote

from sqlalchemy import Engine

from astreinte_ari.adapters.store.queries import CallDetail, CallSummary, get_call, list_calls
from astreinte_ari.adapters.store.safe_text import TRUNCATION_MARK, safe_text, unescape
from tests.rig.wire import AgentLeg, CallerLeg

ASTERISK_CALLERID_MAX = 79  # Asterisk cuts caller IDs to 79 characters


@dataclass(frozen=True, slots=True)
class Expect:
    """What the trail must say of one call."""

    outcomes: frozenset[str]
    abandoned_in: str | None = None  # state the caller left in, e.g. "announcing"
    accepted_by: str | None = None  # person id of the accepting hop
    number: str | None = None  # the caller number the trail should show, if not the wire's

    @classmethod
    def accepted(cls, by: str | None = None) -> Expect:
        return cls(frozenset({"accepted"}), accepted_by=by)

    @classmethod
    def abandoned(cls, in_state: str | None = None) -> Expect:
        return cls(frozenset({"abandoned"}), abandoned_in=in_state)

    @classmethod
    def one_of(cls, *outcomes: str) -> Expect:
        return cls(frozenset(outcomes))


Expectations = Expect | Mapping[str, Expect] | Callable[[CallerLeg], Expect]


def same_number(wire: str, stored: str) -> bool:
    """Does the trail's caller_number (escaped, maybe cut) denote this wire number?"""
    if TRUNCATION_MARK in stored and stored.endswith("]"):
        stored = stored[: stored.rindex(TRUNCATION_MARK)]
        prefix = True
    else:
        prefix = False
    try:
        trail = unescape(stored)
    except ValueError:
        trail = stored
    for form in {wire, unquote(wire, errors="surrogateescape")}:
        cut = form[:ASTERISK_CALLERID_MAX]
        if trail in (form, cut) or (prefix and form.startswith(trail)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Mismatch:
    number: str
    problem: str
    wire: str
    trail: str

    def __str__(self) -> str:
        return f"- {self.number}: {self.problem}\n    wire:  {self.wire}\n    trail: {self.trail}"


def _fmt(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%H:%M:%S.%f")[:-3]


def describe_call(call: CallSummary | CallDetail) -> str:
    return (
        f"call {call.id[:8]} started {_fmt(call.started_at)}, answered {_fmt(call.answered_at)}"
        f", ended {_fmt(call.ended_at)}, outcome {call.outcome} ({call.outcome_detail})"
        f", accepted by {call.accepted_person_id}"
    )


def _off(trail: datetime | None, wire: datetime | None, tolerance: timedelta) -> str | None:
    """Why the two times disagree, or None."""
    if wire is None or trail is None:
        return None if wire is None and trail is None else f"{_fmt(trail)} vs wire {_fmt(wire)}"
    delta = (trail - wire).total_seconds()
    if abs(delta) <= tolerance.total_seconds():
        return None
    return f"{_fmt(trail)} is {abs(delta):.2f} s {'after' if delta > 0 else 'before'} the wire"


@dataclass
class TrailCheck:
    """One comparison of the wire with the trail (see the module doc)."""

    engine: Engine
    callers: Sequence[CallerLeg]
    expect: Expectations
    agents: Sequence[AgentLeg] = ()
    did: str | None = None
    tolerance: timedelta = timedelta(seconds=1)
    margin: timedelta = timedelta(seconds=5)  # trail rows this long before the 1st INVITE count
    agents_must_match: bool = True
    mismatches: list[Mismatch] = field(default_factory=list)

    def expectation(self, leg: CallerLeg) -> Expect:
        if isinstance(self.expect, Expect):
            return self.expect
        if callable(self.expect):
            return self.expect(leg)
        return self.expect[leg.number]

    def rows(self) -> list[CallSummary]:
        """Trail rows in the window: from the first INVITE - margin to now."""
        if not self.callers:
            return []
        since = min(leg.invite_at for leg in self.callers) - self.margin
        return list_calls(self.engine, since=since, did=self.did, limit=100_000)

    def pairs(
        self, rows: Sequence[CallSummary]
    ) -> tuple[dict[str, list[CallSummary]], list[CallSummary]]:
        """The rows of each call placed (by Call-ID; the best first), and the rows that no
        call placed explains (extra)."""
        candidates: list[tuple[float, int, CallerLeg]] = []
        for leg in self.callers:
            number = self.expectation(leg).number
            wire = leg.number if number is None else number
            for i, row in enumerate(rows):
                if same_number(wire, row.caller_number):
                    gap = abs((row.started_at - leg.invite_at).total_seconds())
                    candidates.append((gap, i, leg))
        candidates.sort(key=lambda c: c[:2])
        found: dict[str, list[CallSummary]] = {leg.call_id: [] for leg in self.callers}
        taken: set[int] = set()
        # First one row per call, nearest in time; then any other row with a call's number
        # is a duplicate of the nearest such call.
        for duplicates in (False, True):
            for _, i, leg in candidates:
                if i not in taken and (duplicates or not found[leg.call_id]):
                    found[leg.call_id].append(rows[i])
                    taken.add(i)
        return found, [row for i, row in enumerate(rows) if i not in taken]

    def settled(self) -> bool:
        """Every call placed has an ended row in the trail."""
        found, _ = self.pairs(self.rows())
        return all(rows and all(r.ended_at is not None for r in rows) for rows in found.values())

    def wait_settled(self, timeout: float = 60.0, quiet: float = 1.0) -> bool:
        """Poll until settled() and the trail stops changing for `quiet` s (a late duplicate
        shows up then); False at the deadline: verify() then says what is missing."""
        deadline = time.monotonic() + timeout
        last: object = None
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            rows = self.rows()
            snapshot = [(r.id, r.ended_at, r.outcome, r.answered_at) for r in rows]
            if snapshot != last:
                last, stable_since = snapshot, time.monotonic()
            elif self.settled() and time.monotonic() - stable_since >= quiet:
                return True
            time.sleep(0.2)
        return False

    def verify(self) -> None:
        """Compare; raise one AssertionError listing every mismatch."""
        self.mismatches = []
        rows = self.rows()
        found, extra = self.pairs(rows)
        accepted: list[tuple[CallerLeg, CallDetail]] = []
        for leg in self.callers:
            self._check_call(leg, found[leg.call_id], accepted)
        for row in extra:
            self._add(row.caller_number, "extra call in the trail", "-", describe_call(row))
        if self.agents:
            self._check_agents(accepted)
        if self.mismatches:
            header = (
                f"{len(self.mismatches)} mismatch(es) between the wire ({len(self.callers)} calls "
                f"placed) and the audit trail ({len(rows)} calls in the window):"
            )
            raise AssertionError("\n".join([header, *map(str, self.mismatches)]))

    def _add(self, number: str, problem: str, wire: str, trail: str) -> None:
        self.mismatches.append(Mismatch(number, problem, wire, trail))

    def _check_call(
        self,
        leg: CallerLeg,
        rows: list[CallSummary],
        accepted: list[tuple[CallerLeg, CallDetail]],
    ) -> None:
        number, wire = f"{safe_text(leg.number)} ({leg.call_id})", leg.describe()
        if not rows:
            self._add(number, "missing from the trail", wire, "-")
            return
        if len(rows) > 1:
            shown = " | ".join(describe_call(r) for r in rows)
            self._add(number, f"appears {len(rows)} times", wire, shown)
        detail = get_call(self.engine, rows[0].id)
        assert detail is not None
        trail = describe_call(detail)
        expect = self.expectation(leg)
        problems = []
        if off := _off(detail.started_at, leg.invite_at, self.tolerance):
            problems.append(f"started_at {off} (INVITE)")
        if detail.ended_at is None:
            problems.append("still open (ended_at NULL)")  # its outcome cannot be right yet
        else:
            if off := _off(detail.ended_at, leg.ended_at, self.tolerance):
                problems.append(f"ended_at {off} (end by {leg.ended_by})")
            problems += self._outcome_problems(detail, expect)
        if detail.outcome in ("accepted", "connected"):
            accepted.append((leg, detail))
        for problem in problems:
            self._add(number, problem, wire, trail)

    @staticmethod
    def _outcome_problems(detail: CallDetail, expect: Expect) -> list[str]:
        problems = []
        if detail.outcome not in expect.outcomes:
            wanted = "/".join(sorted(expect.outcomes))
            problems.append(f"outcome {detail.outcome}, expected {wanted}")
        left_in = next(
            (t.from_state for t in reversed(detail.transitions) if t.to_state == "ended"), None
        )
        if expect.abandoned_in is not None and left_in != expect.abandoned_in:
            problems.append(f"abandoned in {left_in}, expected in {expect.abandoned_in}")
        if expect.accepted_by is not None and detail.accepted_person_id != expect.accepted_by:
            who = detail.accepted_person_id
            problems.append(f"accepted by {who}, expected {expect.accepted_by}")
        if detail.outcome in ("accepted", "connected") and detail.answered_at is None:
            problems.append(f"{detail.outcome} but answered_at is NULL")
        return problems

    def _check_agents(self, accepted: Sequence[tuple[CallerLeg, CallDetail]]) -> None:
        """Pair each accepted call with the agent leg that accepted it, then check the call's
        answered_at against that leg's key press.

        The pairing goes by the accepting hop's start (the originate) against the leg's
        INVITE, which follow each other within milliseconds, and only then by answer times:
        at 10 calls/s the keys of different agent legs are 0.1 s apart while the service may
        note a key 0.3 s late, so pairing by key times alone swaps legs between calls."""
        options = []
        for c, (leg, call) in enumerate(accepted):
            hop = next((h for h in call.hops if h.id == call.accepted_hop_id), None)
            for a, agent in enumerate(self.agents):
                if agent.accepted_at is None or call.answered_at is None:
                    continue
                if hop is not None and not same_number(agent.number, hop.number):
                    continue
                pressed = agent.accepted_near(call.answered_at) or agent.accepted_at
                answer_gap = abs((call.answered_at - pressed).total_seconds())
                origin_gap = (
                    abs((hop.started_at - agent.invite_at).total_seconds()) if hop else answer_gap
                )
                options.append(((origin_gap, answer_gap), c, a, leg, call, agent))
        used_calls: set[int] = set()
        used_agents: set[int] = set()
        for _, c, a, leg, call, agent in sorted(options, key=lambda o: o[:3]):
            if c in used_calls or a in used_agents:
                continue
            used_calls.add(c)
            used_agents.add(a)
            pressed = agent.accepted_near(call.answered_at) if call.answered_at else None
            if off := _off(call.answered_at, pressed or agent.accepted_at, self.tolerance):
                what = "key press" if agent.dtmf_at else "answer"
                self._add(
                    f"{safe_text(leg.number)} ({leg.call_id})",
                    f"answered_at {off} ({what} of the accepting agent)",
                    f"{leg.describe()}; {agent.describe()}",
                    describe_call(call),
                )
        for c, (leg, call) in enumerate(accepted):
            if c not in used_calls:
                self._add(
                    f"{safe_text(leg.number)} ({leg.call_id})",
                    "accepted in the trail, but no agent leg answered/pressed a key for it",
                    leg.describe(),
                    describe_call(call),
                )
        if self.agents_must_match:
            for a, agent in enumerate(self.agents):
                if agent.dtmf_at is not None and a not in used_agents:
                    self._add(
                        f"agent {agent.number}",
                        "pressed a key, but no accepted call in the trail matches it",
                        agent.describe(),
                        "-",
                    )


def assert_trail_matches_wire(
    engine: Engine,
    callers: Sequence[CallerLeg],
    expect: Expectations,
    *,
    agents: Sequence[AgentLeg] = (),
    did: str | None = None,
    timeout: float = 60.0,
    tolerance: timedelta = timedelta(seconds=1),
    agents_must_match: bool = True,
) -> TrailCheck:
    """Wait until the trail has settled (or `timeout`), then compare; raises on mismatch."""
    check = TrailCheck(
        engine,
        callers,
        expect,
        agents=agents,
        did=did,
        tolerance=tolerance,
        agents_must_match=agents_must_match,
    )
    check.wait_settled(timeout)
    check.verify()
    return check
