"""Per-caller rate limit (pure): table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astreinte_ari.callflow.audit_events import StateChanged
from astreinte_ari.routing.plan import (
    CallPlan,
    DialTarget,
    FinalAction,
    Hop,
    Period,
    TargetKind,
    VoicemailPolicy,
)
from astreinte_ari.routing.ratelimit import CallerRateLimiter, StillRing, Verdict, limited_plan
from tests.unit.callflow_fakes import hop, plan
from tests.unit.callflow_line import Line
from tests.unit.virtual_time import virtual_time

T0 = datetime(2026, 12, 24, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        # (seconds after T0, caller, did) -> admitted?
        ([(0, "+331", "L"), (60, "+331", "L"), (120, "+331", "L")], [True, True, False]),
        ([(0, "+331", "L"), (60, "+332", "L"), (120, "+331", "L")], [True, True, True]),
        ([(0, "+331", "L"), (60, "+331", "M"), (120, "+331", "L")], [True, True, True]),
        ([(0, "+331", "L"), (60, "+331", "L"), (600, "+331", "L")], [True, True, True]),
        ([(0, "", "L"), (1, "", "L"), (2, "", "L")], [True, True, True]),
        ([(0, "x" * 500, "L"), (1, "x" * 500, "L"), (2, "x" * 499, "L")], [True, True, False]),
    ],
    ids=["third-call", "other-caller", "other-line", "window-expired", "anonymous", "long-id"],
)
def test_limit_two_calls_per_ten_minutes(
    calls: list[tuple[int, str, str]], expected: list[bool]
) -> None:
    limiter = CallerRateLimiter(2, timedelta(minutes=10), include_anonymous=False)
    got = [limiter.admit(did, who, T0 + timedelta(seconds=s)) for s, who, did in calls]
    assert got == expected


def test_anonymous_counted_when_asked() -> None:
    limiter = CallerRateLimiter(1, timedelta(minutes=10), include_anonymous=True)
    assert [limiter.admit("L", "", T0 + timedelta(seconds=i)) for i in range(2)] == [True, False]


PLAN = CallPlan(
    did="+331",
    line_name="L",
    team="t",
    language="fr",
    period=Period.NIGHT,
    announcement="astreinte-night",
    hops=(
        Hop("primary", "p", "P", DialTarget(TargetKind.TRUNK, "+33611", "PJSIP/+33611"), 20),
        Hop("backup", "b", "B", DialTarget(TargetKind.TRUNK, "+33612", "PJSIP/+33612"), 20),
        Hop("supervisor", "s", "S", DialTarget(TargetKind.TRUNK, "+33613", "PJSIP/+33613"), 30),
    ),
    final=FinalAction.HANGUP,
    voicemail=VoicemailPolicy(),
    agent_caller_id="+331",
)
W, S, L = Verdict.WITHIN, Verdict.STILL_RUNG, Verdict.LIMITED


@pytest.mark.parametrize(
    ("every_min", "seconds", "expected"),
    [
        # 2 calls / 10 min; past it, one call every 3 min still rings.
        (3, [0, 10, 20, 30], [W, W, S, L]),
        # The next still-rung call comes 3 min after the last one let through.
        (3, [0, 10, 20, 30, 199, 200, 210], [W, W, S, L, L, S, L]),
        # A calm-down: back within the limit once the window has passed.
        (3, [0, 10, 20, 620, 630, 640], [W, W, S, W, W, S]),
        # Strict (null): past the limit, never rung.
        (None, [0, 10, 20, 200, 400], [W, W, L, L, L]),
    ],
    ids=["first-past-rings", "one-every-3-min", "window-expired", "strict"],
)
def test_past_the_limit_one_call_every_n_minutes_still_rings(
    every_min: int | None, seconds: list[int], expected: list[Verdict]
) -> None:
    every = None if every_min is None else timedelta(minutes=every_min)
    limiter = CallerRateLimiter(2, timedelta(minutes=10), False, still_ring_every=every)
    got = [limiter.decide("L", "+331", T0 + timedelta(seconds=s)).verdict for s in seconds]
    assert got == expected


@pytest.mark.parametrize(
    ("still_ring", "hops", "final", "note"),
    [
        (
            StillRing.FIRST_HOP,
            ["p"],
            FinalAction.HANGUP,
            "caller rate limit: past 1 calls in 10 min (2 now); still rung (first_hop): "
            "one call every 3 min reaches a human",
        ),
        (
            StillRing.LAST_HOP,
            ["s"],
            FinalAction.HANGUP,
            "caller rate limit: past 1 calls in 10 min (2 now); still rung (last_hop): "
            "one call every 3 min reaches a human",
        ),
        (
            StillRing.ALL_HOPS,
            ["p", "b", "s"],
            FinalAction.HANGUP,
            "caller rate limit: past 1 calls in 10 min (2 now); still rung: "
            "one call every 3 min reaches a human",
        ),
    ],
)
def test_the_still_rung_plan_and_its_note(
    still_ring: StillRing, hops: list[str], final: FinalAction, note: str
) -> None:
    limiter = CallerRateLimiter(
        1,
        timedelta(minutes=10),
        False,
        still_ring_every=timedelta(minutes=3),
        still_ring=still_ring,
    )
    assert limiter.apply(PLAN, "+339", T0) is PLAN  # within the limit: unchanged
    rung = limiter.apply(PLAN, "+339", T0 + timedelta(seconds=5))
    assert ([h.person_id for h in rung.hops], rung.final, rung.note) == (hops, final, note)
    limited = limiter.apply(PLAN, "+339", T0 + timedelta(seconds=65))
    assert (limited.hops, limited.final) == ((), FinalAction.VOICEMAIL)
    assert limited.note == (
        "caller rate limit: past 1 calls in 10 min (3 now); voicemail, nobody rung "
        "(one call every 3 min still rings; next in 2 min)"
    )


def test_limited_plan_keeps_announcement_and_voicemail_but_rings_nobody() -> None:
    limited = limited_plan(PLAN, "caller rate limit: past 5 calls in 10 min")
    assert limited.hops == () and limited.final is FinalAction.VOICEMAIL
    assert limited.announcement == "astreinte-night"
    assert limited.note == "caller rate limit: past 5 calls in 10 min"


@virtual_time
async def test_the_rule_is_on_the_trail_even_without_an_announcement() -> None:
    note = "caller rate limit: past 1 calls in 10 min (2 now); still rung (first_hop): ..."
    line = Line(plan(hop("alice", "+33612345678"), announcement=None, note=note))
    call = await line.arrive()
    await line.fails(await line.leg(), 17, "User busy")
    await line.done()
    reasons = [e.reason for e in line.trail.of(StateChanged) if e.call_id == call]
    assert reasons[0] == note
    assert line.ended(call).detail == f"all 1 hops failed; {note}"
