"""One rotation layer, compiled: handoff instants and active windows in UTC.

Handoffs are wall-clock times in the team's zone (a "fri 18:00" handoff stays
18:00 local, so that week's shift is 167 or 169 hours long). A wall time that
does not exist (spring-forward gap) happens at the instant the clock jumps; an
ambiguous one (fall-back) at its first occurrence. All comparisons are done on
UTC instants: same-zone aware datetimes compare by wall time in Python, which
is wrong around the fall-back hour.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from astreinte_ari.config.rotas import Layer
from astreinte_ari.config.rotaspec import MINUTES_PER_DAY, MINUTES_PER_WEEK, Window

_CACHE_LIMIT = 200_000  # boundaries kept per layer; cleared past that
_MIDNIGHT = time()


def local_to_utc(naive: datetime, zone: tzinfo) -> datetime:
    """UTC instant of a local wall time (gap: when the clock jumps; fold: first)."""
    utc = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == naive:
        return utc
    # Inside a spring-forward gap: bisect for the transition between the two readings.
    lo = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(lo, utc), max(lo, utc)
    off_after = hi.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == off_after:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


class CompiledLayer:
    """Pure arithmetic over one `Layer`; memoises the instants it computes."""

    def __init__(self, layer: Layer, zone: tzinfo, index: int) -> None:
        cycle = layer.cycle()
        self.index_in_rota = index
        self.name = layer.name or f"layer {index + 1}"
        self.zone = zone
        self.start = layer.start
        self.cycle_days = cycle.days
        self.points = cycle.points
        self.people = layer.people
        self.windows: tuple[Window, ...] = layer.only.compiled() if layer.only else ()
        self.weeks = layer.only.weeks if layer.only else "all"
        self._week0 = layer.start - timedelta(days=layer.start.weekday())
        self._boundaries: dict[int, datetime] = {}
        self._window_bounds: dict[tuple[int, date], tuple[datetime, datetime]] = {}

    @property
    def restricted(self) -> bool:
        return bool(self.windows) or self.weeks != "all"

    # -- rotation -------------------------------------------------------------

    def boundary(self, k: int) -> datetime:
        """UTC instant of the k-th handoff (k=0: first handoff on the start date;
        negative k: the cycle extended backwards)."""
        cached = self._boundaries.get(k)
        if cached is not None:
            return cached
        cycle, j = divmod(k, len(self.points))
        day = self.start + timedelta(days=cycle * self.cycle_days)
        naive = datetime.combine(day, _MIDNIGHT) + timedelta(minutes=self.points[j])
        value = local_to_utc(naive, self.zone)
        if len(self._boundaries) > _CACHE_LIMIT:
            self._boundaries.clear()
        self._boundaries[k] = value
        return value

    def shift_index(self, at_utc: datetime, local: datetime) -> int:
        """k such that boundary(k) <= at_utc < boundary(k + 1)."""
        days = (local.date() - self.start).days
        cycle, day_in_cycle = divmod(days, self.cycle_days)
        minute = day_in_cycle * MINUTES_PER_DAY + local.hour * 60 + local.minute
        k = cycle * len(self.points) + bisect.bisect_right(self.points, minute) - 1
        while self.boundary(k) > at_utc:
            k -= 1
        while self.boundary(k + 1) <= at_utc:
            k += 1
        return k

    def person(self, k: int) -> str:
        return self.people[k % len(self.people)]

    def boundaries_between(self, start: datetime, end: datetime) -> list[datetime]:
        local = start.astimezone(self.zone)
        k = self.shift_index(start, local) + 1
        found = []
        while (b := self.boundary(k)) < end:
            found.append(b)
            k += 1
        return found

    # -- restrictions ---------------------------------------------------------

    def _bounds(self, w: int, start_day: date) -> tuple[datetime, datetime]:
        key = (w, start_day)
        cached = self._window_bounds.get(key)
        if cached is None:
            window = self.windows[w]
            begin = datetime.combine(start_day, _MIDNIGHT) + timedelta(
                minutes=window.start % MINUTES_PER_DAY
            )
            cached = (
                local_to_utc(begin, self.zone),
                local_to_utc(begin + timedelta(minutes=window.length), self.zone),
            )
            if len(self._window_bounds) > _CACHE_LIMIT:
                self._window_bounds.clear()
            self._window_bounds[key] = cached
        return cached

    def _week_ok(self, day: date) -> bool:
        if self.weeks == "all":
            return True
        parity = ((day - self._week0).days // 7) % 2
        return parity == (0 if self.weeks == "even" else 1)

    def active(self, at_utc: datetime, local: datetime) -> bool:
        """Is the layer active at this instant (always, without restrictions)?"""
        if not self.windows:
            return self._week_ok(local.date())
        minute_of_week = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
        for w, window in enumerate(self.windows):
            since = (minute_of_week - window.start) % MINUTES_PER_WEEK
            offset_days = (local.hour * 60 + local.minute - since) // MINUTES_PER_DAY
            latest = local.date() + timedelta(days=offset_days)
            # Check the latest start on or before `local` and the one a week earlier:
            # wall-clock arithmetic is off by the DST hour near transitions.
            for start_day in (latest, latest - timedelta(days=7), latest + timedelta(days=7)):
                begin, end = self._bounds(w, start_day)
                if begin <= at_utc < end and self._week_ok(start_day):
                    return True
        return False

    def window_edges_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Instants in (start, end) where the layer becomes active or inactive."""
        first = start.astimezone(self.zone).date() - timedelta(days=8)
        last = end.astimezone(self.zone).date() + timedelta(days=1)
        edges: list[datetime] = []
        if not self.windows:
            if self.weeks == "all":
                return edges
            day = first - timedelta(days=first.weekday())
            while day <= last:  # parity changes at each local Monday 00:00
                edges.append(local_to_utc(datetime.combine(day, _MIDNIGHT), self.zone))
                day += timedelta(days=7)
        for w, window in enumerate(self.windows):
            weekday = window.start // MINUTES_PER_DAY
            day = first + timedelta(days=(weekday - first.weekday()) % 7)
            while day <= last:
                if self._week_ok(day):
                    edges.extend(self._bounds(w, day))
                day += timedelta(days=7)
        return [e for e in edges if start < e < end]
