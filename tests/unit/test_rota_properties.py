"""Property tests: every instant of a covered range has exactly one person per layer,
and `shifts` agrees with `who_is_on_call` everywhere (across DST changes too)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from astreinte_ari.config.model import TeamConfig
from astreinte_ari.schedule.rota import shifts, who_is_on_call

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "UTC"]
RESTRICTIONS: list[Any] = [None, "weekdays", "weekends", "nights", {"weeks": "odd"}]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@st.composite
def layers(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.dates(date(2025, 1, 1), date(2028, 12, 31)))
    minute = draw(st.sampled_from([0, 30, 120, 150, 480, 1080, 1410]))
    hhmm = f"{minute // 60:02d}:{minute % 60:02d}"
    every = draw(st.sampled_from(["hour", "6 hours", "day", "3 days", "week", "2 weeks"]))
    handoff = f"{WEEKDAYS[start.weekday()]} {hhmm}" if "week" in every else hhmm
    people = draw(st.lists(st.sampled_from("abcde"), min_size=1, max_size=5))
    layer: dict[str, Any] = {
        "every": every,
        "handoff": handoff,
        "start": start.isoformat(),
        "people": people,
    }
    only = draw(st.sampled_from(RESTRICTIONS))
    if only is not None:
        layer["only"] = only
    return layer


def _team(layer: dict[str, Any], tz: str) -> TeamConfig:
    people = {p: {"name": p, "mobile": f"+3361000000{i}"} for i, p in enumerate("abcde")}
    return TeamConfig.model_validate({"timezone": tz, "people": people, "rotas": {"r": layer}})


@settings(max_examples=150, deadline=None)
@given(
    layer=layers(),
    tz=st.sampled_from(ZONES),
    begin=st.datetimes(datetime(2025, 1, 1), datetime(2029, 1, 1)),
    days=st.integers(1, 20),
    probes=st.lists(st.floats(0, 1, exclude_max=True), min_size=5, max_size=20),
)
def test_exactly_one_person_per_layer_at_every_instant(
    layer: dict[str, Any], tz: str, begin: datetime, days: int, probes: list[float]
) -> None:
    team = _team(layer, tz)
    start = begin.replace(tzinfo=UTC)
    end = start + timedelta(days=days)
    found = shifts(team, "r", start, end)
    # Disjoint, ordered, non-empty, inside the range.
    assert all(s.start < s.end for s in found)
    assert all(x.end <= y.start for x, y in itertools.pairwise(found))
    assert not found or (found[0].start >= start and found[-1].end <= end)
    if "only" not in layer:
        # An unrestricted layer covers the whole range without gap.
        assert found[0].start == start and found[-1].end == end
        assert all(x.end == y.start for x, y in itertools.pairwise(found))
    # Every probed instant (and every piece edge) is held by exactly the shift's person.
    last = end - timedelta(microseconds=1)
    instants = [min(start + (end - start) * p, last) for p in probes]
    instants += [s.start for s in found] + [s.end - timedelta(seconds=1) for s in found]
    for instant in instants:
        holders = [s.person_id for s in found if s.start <= instant < s.end]
        assert len(holders) <= 1
        assert who_is_on_call(team, "r", instant) == (holders[0] if holders else None)
