"""Per-caller rate limit on the on-call lines (pure: time is passed in).

A number that calls again and again (a stuck auto-dialler, a prank, an angry
caller) must not ring the on-call person every time: past the limit it hears
the announcement and can leave a voicemail, which still raises an alert.

But a panicking caller with a real emergency calls again and again too: past
the limit, one call every `still_ring_every` still reaches a human (the first
hop: the on-call person; or the last hop: usually the supervisor; or the whole
cascade). The others go to voicemail. The plan's note says which rule applied.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from astreinte_ari.routing.plan import CallPlan, FinalAction

_MAX_KEY = 64  # caller IDs are untrusted: bound what we keep in memory
_MAX_TRACKED = 10_000


class StillRing(enum.StrEnum):
    """Whom a call past the limit still rings (once every `still_ring_every`)."""

    FIRST_HOP = "first_hop"  # the on-call person (the cascade's first step)
    LAST_HOP = "last_hop"  # the cascade's last step, usually the supervisor
    ALL_HOPS = "all_hops"  # the whole cascade, as within the limit


class Verdict(enum.StrEnum):
    WITHIN = "within"  # within the limit: the plan as it is
    STILL_RUNG = "still_rung"  # past the limit, but this one still reaches a human
    LIMITED = "limited"  # past the limit: announcement and voicemail, nobody rung


@dataclass(frozen=True, slots=True)
class RateDecision:
    verdict: Verdict
    calls: int  # this caller's calls on this line within the window, this one included
    next_ring_in: timedelta | None = None  # LIMITED: until a call may ring again


class CallerRateLimiter:
    def __init__(
        self,
        max_calls: int,
        window: timedelta,
        include_anonymous: bool,
        *,
        still_ring_every: timedelta | None = None,
        still_ring: StillRing = StillRing.FIRST_HOP,
    ) -> None:
        self.max_calls = max_calls
        self.window = window
        self.include_anonymous = include_anonymous
        self.still_ring_every = still_ring_every  # None: past the limit, never rung
        self.still_ring = still_ring
        self._seen: dict[tuple[str, str], deque[datetime]] = {}
        self._still_rung: dict[tuple[str, str], datetime] = {}  # last call let through

    def decide(self, did: str, caller_number: str, now: datetime) -> RateDecision:
        """Record one call and say what it may do."""
        number = caller_number.strip()[:_MAX_KEY]
        if not number and not self.include_anonymous:
            return RateDecision(Verdict.WITHIN, 0)
        key = (did, number)
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        times.append(now)
        if len(self._seen) > _MAX_TRACKED:
            self._forget_idle(now)
        calls = len(times)
        if calls <= self.max_calls:
            return RateDecision(Verdict.WITHIN, calls)
        every = self.still_ring_every
        if every is None:
            return RateDecision(Verdict.LIMITED, calls)
        last = self._still_rung.get(key)
        if last is None or now - last >= every:
            self._still_rung[key] = now
            return RateDecision(Verdict.STILL_RUNG, calls)
        return RateDecision(Verdict.LIMITED, calls, next_ring_in=last + every - now)

    def admit(self, did: str, caller_number: str, now: datetime) -> bool:
        """Record one call; False when it may not ring anyone."""
        return self.decide(did, caller_number, now).verdict is not Verdict.LIMITED

    def apply(self, plan: CallPlan, caller_number: str, now: datetime) -> CallPlan:
        """Record one call to `plan`'s line; the plan it may run (a menu's choices
        reduced alike: the key chooses among cascades under the same rule)."""
        decision = self.decide(plan.did, caller_number, now)
        reduced = plan_after(plan, decision, self)
        if reduced.menu is not None and decision.verdict is Verdict.STILL_RUNG:
            choices = tuple(
                dataclasses.replace(c, plan=plan_after(c.plan, decision, self))
                for c in reduced.menu.choices
            )
            reduced = dataclasses.replace(
                reduced, menu=dataclasses.replace(reduced.menu, choices=choices)
            )
        return reduced

    def _forget_idle(self, now: datetime) -> None:
        for key in [k for k, t in self._seen.items() if not t or now - t[-1] >= self.window]:
            del self._seen[key]
        keep = max(self.window, self.still_ring_every or self.window)
        for key in [k for k, at in self._still_rung.items() if now - at >= keep]:
            del self._still_rung[key]


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes >= 1 else f"{span.total_seconds():.0f} s"


def plan_after(plan: CallPlan, decision: RateDecision, limiter: CallerRateLimiter) -> CallPlan:
    """The plan a call may run under `decision`; its note states the rule applied."""
    if decision.verdict is Verdict.WITHIN:
        return plan
    past = (
        f"caller rate limit: past {limiter.max_calls} calls in "
        f"{_minutes(limiter.window)} ({decision.calls} now)"
    )
    every = limiter.still_ring_every
    if decision.verdict is Verdict.STILL_RUNG:
        assert every is not None
        hops = {
            StillRing.FIRST_HOP: plan.hops[:1],
            StillRing.LAST_HOP: plan.hops[-1:],
            StillRing.ALL_HOPS: plan.hops,
        }[limiter.still_ring]
        who = "" if limiter.still_ring is StillRing.ALL_HOPS else f" ({limiter.still_ring})"
        note = f"{past}; still rung{who}: one call every {_minutes(every)} reaches a human"
        return dataclasses.replace(plan, hops=hops, note=note)
    if every is None:
        rule = "voicemail, nobody rung"
    else:
        wait = decision.next_ring_in or timedelta(0)
        rule = (
            f"voicemail, nobody rung (one call every {_minutes(every)} still rings; "
            f"next in {_minutes(wait)})"
        )
    return limited_plan(plan, f"{past}; {rule}")


def limited_plan(plan: CallPlan, note: str) -> CallPlan:
    """The same line, announcement and voicemail, but nobody rung (nor a menu)."""
    return dataclasses.replace(plan, hops=(), final=FinalAction.VOICEMAIL, note=note, menu=None)
