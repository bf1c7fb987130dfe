"""Rota resolution: handoff boundaries, order, overrides, DST in Europe/Paris."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from astreinte_ari.config.model import TeamConfig
from astreinte_ari.schedule.rota import RotaError, shifts, who_is_on_call

PARIS = ZoneInfo("Europe/Paris")


def _team(rotas: dict[str, Any], overrides: list[dict[str, Any]] | None = None) -> TeamConfig:
    people = {p: {"name": p.title(), "mobile": f"+3361000000{i}"} for i, p in enumerate("abcd")}
    return TeamConfig.model_validate(
        {
            "timezone": "Europe/Paris",
            "people": people,
            "rotas": rotas,
            "overrides": overrides or [],
        }
    )


WEEKLY = {"every": "week", "handoff": "fri 18:00", "start": "2026-01-02", "people": ["a", "b", "c"]}
TEAM = _team(
    {"primary": WEEKLY},
    [{"rota": "primary", "person": "d", "from": "2026-12-24 18:00", "to": "2026-12-26 08:00"}],
)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.mark.parametrize(
    ("at", "person"),
    [
        ("2026-01-02 17:59", "c"),  # before the first handoff the cycle extends back
        ("2026-01-02 18:00", "a"),  # first handoff: first person
        ("2026-01-09 17:59", "a"),  # Friday, one minute before the handoff
        ("2026-01-09 18:00", "b"),  # handoff exactly
        ("2026-01-12 03:00", "b"),
        ("2026-01-16 18:00", "c"),
        ("2026-01-23 18:00", "a"),  # back to the start of the list
        ("2026-01-30 18:00", "b"),
        ("2026-06-05 18:00", "b"),  # 22 weeks after start: 22 % 3 == 1
    ],
)
def test_weekly_rotation(at: str, person: str) -> None:
    assert who_is_on_call(TEAM, "primary", local(at)) == person


def test_same_instant_in_another_zone_gives_same_answer() -> None:
    at = local("2026-01-09 18:00")
    assert who_is_on_call(TEAM, "primary", at.astimezone(UTC)) == "b"
    assert who_is_on_call(TEAM, "primary", at.astimezone(UTC) - timedelta(seconds=1)) == "a"


@pytest.mark.parametrize(
    ("at", "person"),
    [
        ("2026-12-24 17:59", "c"),  # rotation (2026-12-18 handoff: 50 weeks, 50 % 3 -> c)
        ("2026-12-24 18:00", "d"),  # override starts
        ("2026-12-25 18:00", "d"),  # a regular handoff inside the override is hidden
        ("2026-12-26 07:59", "d"),
        ("2026-12-26 08:00", "a"),  # override ended: back to the rotation (week 51)
    ],
)
def test_override_precedence_and_end(at: str, person: str) -> None:
    assert who_is_on_call(TEAM, "primary", local(at)) == person


def test_later_override_wins_when_overlapping() -> None:
    team = _team(
        {"primary": WEEKLY},
        [
            {
                "rota": "primary",
                "person": "d",
                "from": "2026-03-01 00:00",
                "to": "2026-03-10 00:00",
            },
            {
                "rota": "primary",
                "person": "a",
                "from": "2026-03-05 00:00",
                "to": "2026-03-06 00:00",
            },
        ],
    )
    assert who_is_on_call(team, "primary", local("2026-03-04 12:00")) == "d"
    assert who_is_on_call(team, "primary", local("2026-03-05 12:00")) == "a"
    assert who_is_on_call(team, "primary", local("2026-03-06 12:00")) == "d"


@pytest.mark.parametrize(
    ("rota", "before", "after", "hours"),
    [
        # Friday handoff across spring-forward (Sunday 2026-03-29): 167 h shift.
        ({**WEEKLY}, "2026-04-03 17:59", "2026-04-03 18:00", 167),
        # Friday handoff across fall-back (Sunday 2026-10-25): 169 h shift.
        ({**WEEKLY}, "2026-10-30 17:59", "2026-10-30 18:00", 169),
        # Sunday 18:00 handoff on the change days themselves.
        (
            {**WEEKLY, "handoff": "sun 18:00", "start": "2026-01-04"},
            "2026-03-29 17:59",
            "2026-03-29 18:00",
            167,
        ),
        (
            {**WEEKLY, "handoff": "sun 18:00", "start": "2026-01-04"},
            "2026-10-25 17:59",
            "2026-10-25 18:00",
            169,
        ),
    ],
)
def test_dst_handoff_stays_at_local_time(
    rota: dict[str, Any], before: str, after: str, hours: int
) -> None:
    team = _team({"r": rota})
    b, a = local(before), local(after)
    assert who_is_on_call(team, "r", b) != who_is_on_call(team, "r", a)
    # The shift that ends at `after` started one week earlier at the same wall time.
    found = shifts(team, "r", a - timedelta(days=8), a + timedelta(hours=1))
    ending = next(s for s in found if s.end == a)
    assert ending.start.astimezone(PARIS).strftime("%a %H:%M") == a.strftime("%a %H:%M")
    assert (ending.end - ending.start) == timedelta(hours=hours)


def test_daily_handoff_in_the_spring_gap() -> None:
    # 02:30 does not exist on 2026-03-29: the handoff happens at 03:30 CEST.
    team = _team(
        {"d": {"every": "day", "handoff": "02:30", "start": "2026-03-01", "people": ["a", "b"]}}
    )
    before = datetime(2026, 3, 29, 1, 29, tzinfo=UTC)  # 03:29 CEST
    assert who_is_on_call(team, "d", before) != who_is_on_call(
        team, "d", before + timedelta(minutes=1)
    )


def test_every_n_days() -> None:
    team = _team(
        {"r": {"every": "3 days", "handoff": "08:00", "start": "2026-01-01", "people": ["a", "b"]}}
    )
    assert [who_is_on_call(team, "r", local(f"2026-01-0{d} 09:00")) for d in range(1, 8)] == list(
        "aaabbba"
    )


def test_shifts_sources_and_merging() -> None:
    found = shifts(TEAM, "primary", local("2026-12-18 18:00"), local("2027-01-01 18:00"))
    summary = [(s.person_id, s.source, f"{s.start.astimezone(PARIS):%m-%d %H:%M}") for s in found]
    # The 12-25 18:00 handoff is inside the override, so a's shift starts when it ends.
    assert summary == [
        ("c", "rotation", "12-18 18:00"),
        ("d", "override", "12-24 18:00"),
        ("a", "rotation", "12-26 08:00"),
    ]
    assert found[-1].end == local("2027-01-01 18:00")
    assert all(x.end == y.start for x, y in itertools.pairwise(found))


def test_shifts_merge_single_person_rota() -> None:
    team = _team({"solo": {**WEEKLY, "people": ["a"]}})
    found = shifts(team, "solo", local("2026-02-01 00:00"), local("2026-03-01 00:00"))
    assert [(s.person_id, s.start, s.end) for s in found] == [
        ("a", local("2026-02-01 00:00"), local("2026-03-01 00:00"))
    ]


def test_errors() -> None:
    with pytest.raises(RotaError, match="aware"):
        who_is_on_call(TEAM, "primary", datetime(2026, 1, 1, 12, 0))
    with pytest.raises(RotaError, match="unknown rota 'nope'"):
        who_is_on_call(TEAM, "nope", local("2026-01-01 12:00"))
