"""Rota resolver: table-driven named cases (handoffs, DST, restrictions, layers,
overrides, swaps, holidays, leap day)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from astreinte_ari.config.model import TeamConfig
from astreinte_ari.schedule.rota import RotaError, shifts, who_is_on_call

PARIS = ZoneInfo("Europe/Paris")
PEOPLE = "abcdef"


def team(rotas: dict[str, Any], tz: str = "Europe/Paris", **extra: Any) -> TeamConfig:
    people = {p: {"name": p.title(), "mobile": f"+3361000000{i}"} for i, p in enumerate(PEOPLE)}
    return TeamConfig.model_validate({"timezone": tz, "people": people, "rotas": rotas, **extra})


def at(text: str, tz: str = "Europe/Paris") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


WEEKLY = {"every": "week", "handoff": "fri 18:00", "start": "2026-01-02", "people": ["a", "b", "c"]}
DAILY = {"every": "day", "handoff": "08:00", "start": "2026-01-01", "people": ["a", "b"]}

# (case, rota, instant (local), expected person or None)
CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("weekly: before the first handoff the cycle extends back", WEEKLY, "2026-01-02 17:59", "c"),
    ("weekly: first handoff gives the first person", WEEKLY, "2026-01-02 18:00", "a"),
    ("weekly: one minute before a handoff", WEEKLY, "2026-01-09 17:59", "a"),
    ("weekly: exactly at a handoff", WEEKLY, "2026-01-09 18:00", "b"),
    ("weekly: wraps to the start of the list", WEEKLY, "2026-01-23 18:00", "a"),
    ("weekly: 22 weeks later (22 % 3 == 1)", WEEKLY, "2026-06-05 18:00", "b"),
    ("daily: before 08:00 is yesterday's shift", DAILY, "2026-01-02 07:59", "a"),
    ("daily: at 08:00 the next person", DAILY, "2026-01-02 08:00", "b"),
    (
        "every 3 days",
        {**DAILY, "every": "3 days"},
        "2026-01-04 09:00",
        "b",
    ),
    (
        "every 12 hours: 08:00 and 20:00",
        {**DAILY, "every": "12 hours", "people": ["a", "b", "c"]},
        "2026-01-01 20:00",
        "b",
    ),
    (
        "hourly: 4th hour after 08:00",
        {**DAILY, "every": "hour", "people": list("abcdef")},
        "2026-01-01 11:30",
        "d",
    ),
    (
        "custom handoffs mon 08:00 / thu 20:00, second slot",
        {
            "every": "week",
            "handoffs": ["mon 08:00", "thu 20:00"],
            "start": "2026-01-05",
            "people": ["a", "b", "c"],
        },
        "2026-01-09 10:00",
        "b",
    ),
    (
        "custom handoffs, next cycle third person",
        {
            "every": "week",
            "handoffs": ["mon 08:00", "thu 20:00"],
            "start": "2026-01-05",
            "people": ["a", "b", "c"],
        },
        "2026-01-12 09:00",
        "c",
    ),
    (
        "2-2-3 pattern written with day N",
        {
            "every": "7 days",
            "handoffs": ["day 1 08:00", "day 3 08:00", "day 5 08:00"],
            "start": "2026-01-05",
            "people": ["a", "b", "c", "d"],
        },
        "2026-01-11 12:00",
        "c",
    ),
    ("weekday-only: Wednesday", {**WEEKLY, "only": "weekdays"}, "2026-01-07 03:00", "a"),
    ("weekday-only: Saturday is a gap", {**WEEKLY, "only": "weekdays"}, "2026-01-10 12:00", None),
    ("nights-only: 23:00", {**DAILY, "only": "nights"}, "2026-01-02 23:00", "b"),
    ("nights-only: 03:00 next day", {**DAILY, "only": "nights"}, "2026-01-03 03:00", "b"),
    ("nights-only: 12:00 is a gap", {**DAILY, "only": "nights"}, "2026-01-02 12:00", None),
    ("weekends-only: Sunday", {**WEEKLY, "only": "weekends"}, "2026-01-11 10:00", "b"),
    ("weekends-only: Monday gap", {**WEEKLY, "only": "weekends"}, "2026-01-12 10:00", None),
    (
        "weekend window fri 18:00 - mon 08:00, Monday 07:59",
        {**WEEKLY, "only": {"windows": ["fri 18:00 - mon 08:00"]}},
        "2026-01-12 07:59",
        "b",
    ),
    (
        "weekend window, Monday 08:00 is a gap",
        {**WEEKLY, "only": {"windows": ["fri 18:00 - mon 08:00"]}},
        "2026-01-12 08:00",
        None,
    ),
    (
        "alternate weeks: even week (start week)",
        {**WEEKLY, "every": "2 weeks", "only": {"weeks": "even"}},
        "2026-01-01 12:00",  # Thursday of the start week, before the first handoff
        "c",
    ),
    (
        "alternate weeks: odd week is a gap",
        {**WEEKLY, "every": "2 weeks", "only": {"weeks": "even"}},
        "2026-01-06 12:00",
        None,
    ),
    (
        "alternate weeks: next even week",
        {**WEEKLY, "every": "2 weeks", "only": {"weeks": "even"}},
        "2026-01-13 12:00",
        "a",
    ),
    (
        "leap day: daily rota counts 29 February",
        {**DAILY, "start": "2028-02-27", "people": ["a", "b", "c"]},
        "2028-02-29 09:00",
        "c",
    ),
    (
        "leap day: 1 March follows 29 February",
        {**DAILY, "start": "2028-02-27", "people": ["a", "b", "c"]},
        "2028-03-01 09:00",
        "a",
    ),
    (
        "leap day: weekly rota starting on 29 February",
        {**WEEKLY, "handoff": "tue 09:00", "start": "2028-02-29"},
        "2029-02-27 09:00",  # 52 weeks later: 52 % 3 == 1
        "b",
    ),
]


@pytest.mark.parametrize(("case", "rota", "instant", "person"), CASES, ids=[c[0] for c in CASES])
def test_resolver_cases(case: str, rota: dict[str, Any], instant: str, person: str | None) -> None:
    assert who_is_on_call(team({"r": rota}), "r", at(instant)) == person


def test_same_instant_in_another_zone_gives_same_answer() -> None:
    t = team({"r": WEEKLY})
    handoff = at("2026-01-09 18:00").astimezone(UTC)
    assert who_is_on_call(t, "r", handoff) == "b"
    assert who_is_on_call(t, "r", handoff - timedelta(seconds=1)) == "a"


# -- DST ------------------------------------------------------------------------

# (case, zone, handoff, start, handoff instant (local), expected shift length in hours)
DST: list[tuple[str, str, str, str, str, int]] = [
    ("2026 spring, Fri 18:00", "Europe/Paris", "fri 18:00", "2026-01-02", "2026-04-03 18:00", 167),
    ("2026 autumn, Fri 18:00", "Europe/Paris", "fri 18:00", "2026-01-02", "2026-10-30 18:00", 169),
    ("2026 spring, on the day", "Europe/Paris", "sun 18:00", "2026-01-04", "2026-03-29 18:00", 167),
    ("2026 autumn, on the day", "Europe/Paris", "sun 18:00", "2026-01-04", "2026-10-25 18:00", 169),
    ("2027 spring, Fri 18:00", "Europe/Paris", "fri 18:00", "2026-01-02", "2027-04-02 18:00", 167),
    ("2027 autumn, Fri 18:00", "Europe/Paris", "fri 18:00", "2026-01-02", "2027-11-05 18:00", 169),
    ("2027 spring, Sun 08:00", "Europe/Berlin", "sun 08:00", "2027-01-03", "2027-03-28 08:00", 167),
    ("2027 autumn, Sun 08:00", "Europe/Berlin", "sun 08:00", "2027-01-03", "2027-10-31 08:00", 169),
    ("US 2026 spring", "America/New_York", "mon 09:00", "2026-01-05", "2026-03-09 09:00", 167),
    ("US 2026 autumn", "America/New_York", "mon 09:00", "2026-01-05", "2026-11-02 09:00", 169),
]


@pytest.mark.parametrize(
    ("case", "tz", "handoff", "start", "instant", "hours"), DST, ids=[d[0] for d in DST]
)
def test_dst_weekly_handoff_stays_at_local_time(
    case: str, tz: str, handoff: str, start: str, instant: str, hours: int
) -> None:
    rota = {"every": "week", "handoff": handoff, "start": start, "people": ["a", "b", "c"]}
    t = team({"r": rota}, tz)
    h = at(instant, tz)
    assert who_is_on_call(t, "r", h - timedelta(minutes=1)) != who_is_on_call(t, "r", h)
    found = shifts(t, "r", h - timedelta(days=8), h + timedelta(days=8))
    ending = next(s for s in found if s.end == h)
    assert ending.start.astimezone(ZoneInfo(tz)).strftime("%a %H:%M") == h.strftime("%a %H:%M")
    assert ending.end - ending.start == timedelta(hours=hours)
    # No gap, no overlap around the transition.
    assert all(x.end == y.start for x, y in itertools.pairwise(found))
    assert found[0].start == h - timedelta(days=8) and found[-1].end == h + timedelta(days=8)


@pytest.mark.parametrize(
    ("day", "tz", "hours"),
    [
        ("2026-03-29", "Europe/Paris", 23),
        ("2026-10-25", "Europe/Paris", 25),
        ("2027-03-28", "Europe/Paris", 23),
        ("2027-10-31", "Europe/Paris", 25),
        ("2026-03-08", "America/New_York", 23),
        ("2026-11-01", "America/New_York", 25),
    ],
)
def test_dst_daily_shift_is_23_or_25_hours(day: str, tz: str, hours: int) -> None:
    t = team({"r": {**DAILY, "handoff": "00:00", "people": ["a", "b", "c"]}}, tz)
    midnight = at(f"{day} 00:00", tz).astimezone(UTC)  # aware arithmetic in UTC only
    found = shifts(t, "r", midnight, midnight + timedelta(hours=hours))
    assert len(found) == 1 and found[0].end - found[0].start == timedelta(hours=hours)


def test_dst_handoff_in_the_spring_gap_happens_when_the_clock_jumps() -> None:
    # 02:30 does not exist on 2026-03-29 in Paris: the handoff is at 03:00 CEST (01:00 UTC).
    t = team({"r": {**DAILY, "handoff": "02:30", "start": "2026-03-01"}})
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert who_is_on_call(t, "r", jump - timedelta(seconds=1)) != who_is_on_call(t, "r", jump)
    # The next day it is 02:30 again.
    found = shifts(t, "r", jump, jump + timedelta(days=1))
    assert found[0].end.astimezone(PARIS).strftime("%H:%M") == "02:30"


def test_dst_hourly_rotation_has_no_gap_or_overlap_on_fall_back() -> None:
    t = team({"r": {**DAILY, "every": "hour", "handoff": "00:00", "start": "2026-10-01"}})
    begin, end = at("2026-10-25 00:00").astimezone(UTC), at("2026-10-25 06:00").astimezone(UTC)
    found = shifts(t, "r", begin, end)
    assert all(x.end == y.start for x, y in itertools.pairwise(found))
    assert sum((s.end - s.start for s in found), timedelta()) == end - begin == timedelta(hours=7)
    # The 02:00 handoff happens at the first 02:00: that shift lasts two real hours.
    assert [int((s.end - s.start).total_seconds() // 3600) for s in found] == [1, 1, 2, 1, 1, 1]


# -- layers, overrides, swaps, holidays -------------------------------------------


def test_later_layer_wins_where_active_and_a_person_may_be_in_several() -> None:
    rota = {
        "layers": [
            {**WEEKLY, "name": "week"},
            {**DAILY, "people": ["a", "d"], "only": "nights", "name": "nights"},
        ]
    }
    t = team({"r": rota})
    assert who_is_on_call(t, "r", at("2026-01-07 12:00")) == "a"  # week layer
    assert who_is_on_call(t, "r", at("2026-01-08 23:00")) == "d"  # night layer
    assert who_is_on_call(t, "r", at("2026-01-09 23:00")) == "a"  # night layer (week layer: b)
    assert who_is_on_call(t, "r", at("2026-01-10 12:00")) == "b"  # week layer
    layers = {s.layer for s in shifts(t, "r", at("2026-01-07 00:00"), at("2026-01-09 00:00"))}
    assert layers == {"week", "nights"}


OVERLAP = [
    {"rota": "r", "person": "d", "from": "2026-03-01 00:00", "to": "2026-03-10 00:00"},
    {"rota": "r", "person": "e", "from": "2026-03-05 00:00", "to": "2026-03-06 00:00"},
    {"rota": "r", "person": "f", "from": "2026-03-04 00:00", "to": "2026-03-05 12:00"},
]


@pytest.mark.parametrize(
    ("instant", "person"),
    [
        ("2026-02-28 23:59", "c"),  # before: rotation (week 8)
        ("2026-03-03 12:00", "d"),  # first override only
        ("2026-03-04 12:00", "f"),  # third overlaps the first: the later one wins
        ("2026-03-05 06:00", "f"),  # second and third overlap: the third is later
        ("2026-03-05 12:00", "e"),  # third ended, second still on
        ("2026-03-06 12:00", "d"),  # back to the first
        ("2026-03-10 00:00", "a"),  # all ended: rotation (week 9)
    ],
)
def test_overlapping_overrides_later_entry_wins(instant: str, person: str) -> None:
    assert who_is_on_call(team({"r": WEEKLY}, overrides=OVERLAP), "r", at(instant)) == person


def test_override_keeps_requester_and_reason_and_hides_the_handoff() -> None:
    override = {
        "rota": "r",
        "person": "d",
        "from": "2026-12-24 18:00",
        "to": "2026-12-26 08:00",
        "reason": "échange",
        "requested_by": "c",
    }
    t = team({"r": WEEKLY}, overrides=[override])
    found = shifts(t, "r", at("2026-12-18 18:00"), at("2027-01-01 18:00"))
    summary = [(s.person_id, s.source, f"{s.start.astimezone(PARIS):%m-%d %H:%M}") for s in found]
    assert summary == [
        ("c", "rotation", "12-18 18:00"),
        ("d", "override", "12-24 18:00"),
        ("a", "rotation", "12-26 08:00"),
    ]
    assert (found[1].reason, found[1].requested_by) == ("échange", "c")


def test_swap_and_swap_of_a_swapped_shift() -> None:
    # Week shifts from 2026-01-02: a, b, c, a, b...
    swaps = [
        {"rota": "r", "first": "2026-01-02", "second": "2026-01-09", "requested_by": "a"},
        # The 01-09 shift now belongs to a; swap it again with c's shift of 01-16.
        {"rota": "r", "first": "2026-01-12 10:00", "second": "2026-01-16", "reason": "dentist"},
    ]
    t = team({"r": WEEKLY}, swaps=swaps)
    holders = [who_is_on_call(t, "r", at(d)) for d in ("2026-01-03", "2026-01-10", "2026-01-17")]
    assert holders == ["b", "c", "a"]
    found = shifts(t, "r", at("2026-01-02 18:00"), at("2026-01-23 18:00"))
    assert [(s.person_id, s.source, s.requested_by, s.reason) for s in found] == [
        ("b", "swap", "a", None),
        ("c", "swap", None, "dentist"),
        ("a", "swap", None, "dentist"),
    ]


def test_holiday_on_a_handoff_day_takes_the_whole_day_then_the_new_person() -> None:
    # 2026-12-25 is a Friday (handoff day) and a public holiday in France.
    rules = [{"rota": "r", "person": "f", "public_holidays": True, "reason": "Noël"}]
    t = team({"r": WEEKLY}, holiday_rules=rules)
    assert who_is_on_call(t, "r", at("2026-12-24 23:59")) == "c"
    assert who_is_on_call(t, "r", at("2026-12-25 00:00")) == "f"
    assert who_is_on_call(t, "r", at("2026-12-25 18:00")) == "f"  # the handoff is hidden
    assert who_is_on_call(t, "r", at("2026-12-26 00:00")) == "a"  # the new week's person
    found = shifts(t, "r", at("2026-12-24 00:00"), at("2026-12-27 00:00"))
    assert [(s.person_id, s.source) for s in found] == [
        ("c", "rotation"),
        ("f", "holiday"),
        ("a", "rotation"),
    ]


def test_precedence_closure_over_override_over_rotation() -> None:
    closure = {"rota": "r", "person": "e", "from": "2026-08-10", "to": "2026-08-14"}
    override = {"rota": "r", "person": "d", "from": "2026-08-01 00:00", "to": "2026-08-20 00:00"}
    t = team({"r": WEEKLY}, holiday_rules=[closure], overrides=[override])
    assert who_is_on_call(t, "r", at("2026-08-09 12:00")) == "d"
    assert who_is_on_call(t, "r", at("2026-08-14 23:59")) == "e"
    assert who_is_on_call(t, "r", at("2026-08-15 00:00")) == "d"  # Assumption: no rule for it


def test_alsace_moselle_adds_good_friday() -> None:
    rules = [{"person": "f", "public_holidays": True}]
    good_friday = at("2026-04-03 12:00")
    plain = team({"r": WEEKLY}, holiday_rules=rules)
    moselle = team({"r": WEEKLY}, holiday_rules=rules, holidays={"subdiv": "Alsace-Moselle"})
    assert who_is_on_call(plain, "r", good_friday) != "f"
    assert who_is_on_call(moselle, "r", good_friday) == "f"


def test_single_person_rota_gives_one_merged_shift() -> None:
    t = team({"r": {**WEEKLY, "people": ["a"]}})
    found = shifts(t, "r", at("2026-02-01 00:00"), at("2026-03-01 00:00"))
    assert [(s.person_id, s.start, s.end) for s in found] == [
        ("a", at("2026-02-01 00:00"), at("2026-03-01 00:00"))
    ]


def test_errors() -> None:
    t = team({"r": WEEKLY})
    with pytest.raises(RotaError, match="aware"):
        who_is_on_call(t, "r", datetime(2026, 1, 1, 12, 0))
    with pytest.raises(RotaError, match="unknown rota 'nope'"):
        who_is_on_call(t, "nope", at("2026-01-01 12:00"))
