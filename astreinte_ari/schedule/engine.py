"""A rota compiled for fast, pure lookups.

Precedence at an instant (documented in docs/rotas.md):
  1. holiday rules and closures (whole local days; the later rule wins),
  2. overrides (the later entry wins; only where the rota has someone),
  3. rotation layers (the later layer wins where it is active; swaps apply
     to the layer's shifts, in the order they are listed).
Where no layer is active and no holiday rule applies, nobody is on call.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from astreinte_ari.config.model import TeamConfig
from astreinte_ari.config.rotas import HolidayCalendar
from astreinte_ari.public_holidays import public_holiday_dates
from astreinte_ari.schedule.layers import CompiledLayer, local_to_utc

ShiftSource = Literal["rotation", "swap", "override", "holiday", "closure"]


class RotaError(ValueError):
    """Unknown rota, missing time zone, a naive datetime, or an unusable entry."""


@dataclass(frozen=True, slots=True)
class Assignment:
    person_id: str
    source: ShiftSource
    layer: int  # index of the rotation layer; -1 for holiday rules
    entry: int  # index of the override / swap / holiday rule; -1 for plain rotation
    shift: int  # rotation shift number k (0: first handoff); 0 when not rotation-based


def is_public_holiday(calendar: HolidayCalendar, day: date) -> bool:
    if calendar.country is None:
        return False
    return day in public_holiday_dates(calendar.country, calendar.subdiv, day.year)


def _local_naive(value: datetime, zone: ZoneInfo) -> datetime:
    """Override times: naive means local wall time of the team's zone."""
    if value.tzinfo is None:
        return local_to_utc(value, zone)
    return value.astimezone(UTC)


class CompiledRota:
    def __init__(self, team: TeamConfig, rota_name: str) -> None:
        if not team.timezone:
            raise RotaError("the team has no time zone (AppConfig gives it the global one)")
        if rota_name not in team.rotas:
            known = ", ".join(team.rotas) or "none"
            raise RotaError(f"unknown rota '{rota_name}' (team has: {known})")
        self.team = team
        self.name = rota_name
        self.zone = ZoneInfo(team.timezone)
        self.layers = [
            CompiledLayer(layer, self.zone, i)
            for i, layer in enumerate(team.rotas[rota_name].all_layers())
        ]
        self._compile_holidays()
        self._compile_overrides()
        self.swaps: dict[tuple[int, int], tuple[str, int]] = {}
        self.swap_issues: list[tuple[int, str]] = []
        self._compile_swaps()

    # -- compilation ----------------------------------------------------------

    def _compile_holidays(self) -> None:
        self.holiday_dates: dict[date, int] = {}
        self.public_rule = -1
        for i, rule in enumerate(self.team.holiday_rules):
            if rule.rota not in (None, self.name):
                continue
            days = list(rule.dates)
            if rule.from_ is not None and rule.to is not None:
                days += [
                    rule.from_ + timedelta(days=n) for n in range((rule.to - rule.from_).days + 1)
                ]
            for day in days:
                self.holiday_dates[day] = i  # later rules overwrite earlier ones
            if rule.public_holidays:
                self.public_rule = i

    def _holiday_rule(self, day: date) -> int:
        explicit = self.holiday_dates.get(day, -1)
        if self.public_rule > explicit and is_public_holiday(self.team.holidays, day):
            return self.public_rule
        return explicit

    def _compile_overrides(self) -> None:
        """Flatten overlapping overrides into disjoint segments (later entry wins)."""
        spans = [
            (
                _local_naive(o.from_, self.zone).timestamp(),
                _local_naive(o.to, self.zone).timestamp(),
                i,
            )
            for i, o in enumerate(self.team.overrides)
            if o.rota == self.name
        ]
        self.override_spans = spans
        edges = sorted({t for s, e, _ in spans for t in (s, e)})
        by_start = sorted(spans)
        heap: list[tuple[int, float]] = []  # (-entry, end)
        segments: list[tuple[float, float, int]] = []
        pos = 0
        for left, right in itertools.pairwise(edges):
            while pos < len(by_start) and by_start[pos][0] <= left:
                heapq.heappush(heap, (-by_start[pos][2], by_start[pos][1]))
                pos += 1
            while heap and heap[0][1] <= left:
                heapq.heappop(heap)
            if not heap:
                continue
            winner = -heap[0][0]
            if segments and segments[-1][2] == winner and segments[-1][1] == left:
                segments[-1] = (segments[-1][0], right, winner)
            else:
                segments.append((left, right, winner))
        self.ov_starts = [s for s, _, _ in segments]
        self.ov_segments = segments

    def _compile_swaps(self) -> None:
        for i, swap in enumerate(self.team.swaps):
            if swap.rota != self.name:
                continue
            sides = [self.locate_shift(side) for side in (swap.first, swap.second)]
            problem = next((s for s in sides if isinstance(s, str)), None)
            if problem is None:
                (l1, k1), (l2, k2) = sides  # type: ignore[misc]
                if l1 != l2:
                    problem = "the two shifts belong to different layers"
                elif k1 == k2:
                    problem = "'first' and 'second' are the same shift"
            if problem is not None:
                self.swap_issues.append((i, problem))
                continue
            p1, p2 = self._rotation_holder(l1, k1)[0], self._rotation_holder(l2, k2)[0]
            self.swaps[(l1, k1)] = (p2, i)
            self.swaps[(l2, k2)] = (p1, i)

    def _rotation_holder(self, layer: int, k: int) -> tuple[str, int]:
        return self.swaps.get((layer, k)) or (self.layers[layer].person(k), -1)

    def locate_shift(self, side: datetime | date) -> tuple[int, int] | str:
        """(layer, k) of the shift a swap names, or why it names none."""
        if isinstance(side, datetime):
            at = _local_naive(side, self.zone)
            base = self._base(at, at.astimezone(self.zone))
            if base is None:
                return f"nobody is on call in rota '{self.name}' at {side}"
            return base.layer, base.shift
        begin = local_to_utc(datetime.combine(side, time()), self.zone)
        end = local_to_utc(datetime.combine(side + timedelta(days=1), time()), self.zone)
        found = []
        for layer in self.layers:
            for b in [begin, *layer.boundaries_between(begin, end)]:
                k = layer.shift_index(b, b.astimezone(self.zone))
                if layer.boundary(k) == b and layer.active(b, b.astimezone(self.zone)):
                    found.append((layer.index_in_rota, k))
        if len(found) == 1:
            return found[0]
        if not found:
            return f"no shift of rota '{self.name}' starts on {side}"
        return f"several shifts of rota '{self.name}' start on {side}: give the time too"

    # -- lookups --------------------------------------------------------------

    def _base(self, at: datetime, local: datetime) -> Assignment | None:
        for layer in reversed(self.layers):
            if layer.active(at, local):
                k = layer.shift_index(at, local)
                person, entry = self._rotation_holder(layer.index_in_rota, k)
                source: ShiftSource = "swap" if entry >= 0 else "rotation"
                return Assignment(person, source, layer.index_in_rota, entry, k)
        return None

    def at(self, at_utc: datetime) -> Assignment | None:
        """Who holds the rota at this aware UTC instant, and why; None: nobody."""
        local = at_utc.astimezone(self.zone)
        rule = self._holiday_rule(local.date())
        if rule >= 0:
            holiday = self.team.holiday_rules[rule]
            explicit = self.holiday_dates.get(local.date()) == rule
            kind: ShiftSource = "closure" if explicit else "holiday"
            return Assignment(holiday.person, kind, -1, rule, 0)
        base = self._base(at_utc, local)
        if base is None:
            return None
        stamp = at_utc.timestamp()
        i = bisect.bisect_right(self.ov_starts, stamp) - 1
        if i >= 0 and stamp < self.ov_segments[i][1]:
            entry = self.ov_segments[i][2]
            return Assignment(self.team.overrides[entry].person, "override", -1, entry, 0)
        return base

    def cuts_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Every instant in (start, end) where the holder may change."""
        cuts: set[datetime] = set()
        for layer in self.layers:
            cuts.update(layer.boundaries_between(start, end))
            cuts.update(layer.window_edges_between(start, end))
        lo, hi = start.timestamp(), end.timestamp()
        first = max(bisect.bisect_right(self.ov_starts, lo) - 1, 0)
        for s, e, _ in self.ov_segments[first:]:
            if s >= hi:
                break
            cuts.update(datetime.fromtimestamp(t, UTC) for t in (s, e) if lo < t < hi)
        if self.holiday_dates or self.public_rule >= 0:
            day = start.astimezone(self.zone).date()
            while (midnight := local_to_utc(datetime.combine(day, time()), self.zone)) < end:
                if start < midnight:
                    cuts.add(midnight)
                day += timedelta(days=1)
        return sorted(cuts)

    def covered_between(self, start: datetime, end: datetime) -> bool:
        """Does some rotation layer have someone at some instant of [start, end)?"""
        if any(not layer.restricted for layer in self.layers):
            return True
        edges = [start]
        for layer in self.layers:
            edges += layer.window_edges_between(start, end)
        return any(self._base(t, t.astimezone(self.zone)) is not None for t in edges)

    def override_range(self, entry: int) -> tuple[datetime, datetime]:
        override = self.team.overrides[entry]
        return _local_naive(override.from_, self.zone), _local_naive(override.to, self.zone)
