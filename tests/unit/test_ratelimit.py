"""Per-caller rate limit (pure): table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astreinte_ari.routing.plan import (
    CallPlan,
    DialTarget,
    FinalAction,
    Hop,
    Period,
    TargetKind,
    VoicemailPolicy,
)
from astreinte_ari.routing.ratelimit import CallerRateLimiter, limited_plan

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


def test_limited_plan_keeps_announcement_and_voicemail_but_rings_nobody() -> None:
    plan = CallPlan(
        did="+331",
        line_name="L",
        team="t",
        language="fr",
        period=Period.NIGHT,
        announcement="astreinte-night",
        hops=(
            Hop("primary", "p", "P", DialTarget(TargetKind.TRUNK, "+33611", "PJSIP/+33611"), 20),
        ),
        final=FinalAction.HANGUP,
        voicemail=VoicemailPolicy(),
        agent_caller_id="+331",
    )
    limited = limited_plan(plan, 5, timedelta(minutes=10))
    assert limited.hops == () and limited.final is FinalAction.VOICEMAIL
    assert limited.announcement == "astreinte-night"
    assert limited.note is not None and "rate limit" in limited.note
