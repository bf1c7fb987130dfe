"""Parsers for the rota notations: rotation cycles, handoff points, restrictions.

Everything is wall-clock minutes so that the schedule layer can anchor them in
the team's IANA zone: a cycle is a number of local days plus the handoff points
inside it, counted in minutes from local midnight of the cycle's first day.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from astreinte_ari.config import timespec

MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY

_EVERY_RE = re.compile(r"^(?:(\d+)\s+)?(hour|hours|day|days|week|weeks)$")
_DAY_N_RE = re.compile(r"^day\s+(\d+)\s+(\d{1,2}:\d{2})$")
_WINDOW_RE = re.compile(r"^\s*(\w+)\s+(\d{1,2}:\d{2})\s*-\s*(\w+)\s+(\d{1,2}:\d{2})\s*$")

# Shorthands accepted for `only:`.
PRESETS: dict[str, dict[str, str]] = {
    "weekdays": {"days": "mon-fri"},
    "weekends": {"days": "sat-sun"},
    "nights": {"hours": "18:00-08:00"},
    "weekday-nights": {"days": "mon-fri", "hours": "18:00-08:00"},
}


@dataclass(frozen=True, slots=True)
class Cycle:
    """`days` local days per cycle; handoffs at `points` minutes after local
    midnight of the cycle's first day (strictly increasing, < days * 1440)."""

    days: int
    points: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly active window: starts `start` minutes after Monday 00:00 local
    wall time and lasts `length` wall-clock minutes (at most one week)."""

    start: int
    length: int


def parse_every(text: str | int) -> tuple[str, int]:
    """'week' -> ('days', 7); '12 hours' -> ('hours', 12); '3 days' -> ('days', 3)."""
    m = _EVERY_RE.match(str(text).strip().lower())
    if not m:
        raise ValueError(
            f"'{text}' is not a rotation length "
            "(use hour, '12 hours', day, '3 days', week, '2 weeks')"
        )
    count = int(m.group(1) or 1)
    if count < 1:
        raise ValueError("rotation length must be at least 1")
    unit = m.group(2)
    if unit.startswith("hour"):
        if count % 24 == 0:
            return "days", count // 24
        if 24 % count:
            raise ValueError(f"'{text}': an hourly length must divide 24 (1, 2, 3, 4, 6, 8, 12)")
        return "hours", count
    return "days", count * (7 if unit.startswith("week") else 1)


def _point(text: str, start_weekday: int) -> int:
    """One handoff of a custom list: 'thu 08:00' or 'day 3 08:00' (day 1 = start)."""
    m = _DAY_N_RE.match(text.strip().lower())
    if m:
        day = int(m.group(1))
        if day < 1:
            raise ValueError(f"'{text}': days are counted from 1 (the start date)")
        return (day - 1) * MINUTES_PER_DAY + timespec.parse_hhmm(m.group(2))
    spec = timespec.parse_handoff(text)
    if spec.weekday is None:
        return spec.minute
    return ((spec.weekday - start_weekday) % 7) * MINUTES_PER_DAY + spec.minute


def build_cycle(
    every: str, handoff: str | None, handoffs: Sequence[str], start_weekday: int
) -> Cycle:
    """The cycle of one rotation; raises ValueError naming the problem."""
    unit, count = parse_every(every)
    if handoffs:
        if handoff is not None:
            raise ValueError("give either 'handoff' or 'handoffs', not both")
        if unit == "hours":
            raise ValueError("'handoffs' needs a length in days or weeks")
        points = tuple(_point(h, start_weekday) for h in handoffs)
        if points[0] >= MINUTES_PER_DAY:
            raise ValueError(f"the first handoff '{handoffs[0]}' must fall on the start date")
        for prev, nxt, text in zip(points, points[1:], handoffs[1:], strict=False):
            if nxt <= prev:
                raise ValueError(f"handoff '{text}' is not after the previous one in the cycle")
        if points[-1] >= count * MINUTES_PER_DAY:
            raise ValueError(f"handoff '{handoffs[-1]}' falls after the end of the cycle")
        return Cycle(count, points)
    if handoff is None:
        raise ValueError("missing 'handoff' (e.g. \"fri 18:00\") or 'handoffs'")
    first = timespec.parse_handoff(handoff).minute
    if unit == "hours":
        return Cycle(1, tuple(first + i * count * 60 for i in range(24 // count)))
    return Cycle(count, (first,))


def parse_window(text: str) -> Window:
    """'fri 18:00 - mon 08:00' -> a weekly window (may wrap over Sunday night)."""
    m = _WINDOW_RE.match(text)
    if not m:
        raise ValueError(f"'{text}' is not a window like 'fri 18:00 - mon 08:00'")
    start = timespec.parse_weekday(m.group(1)) * MINUTES_PER_DAY + timespec.parse_hhmm(m.group(2))
    end = timespec.parse_weekday(m.group(3)) * MINUTES_PER_DAY + timespec.parse_hhmm(
        m.group(4), allow_24=True
    )
    length = (end - start) % MINUTES_PER_WEEK or MINUTES_PER_WEEK
    return Window(start, length)


def build_windows(
    days: str | None, hours: str | None, windows: Sequence[str]
) -> tuple[Window, ...]:
    """Weekly windows of a restriction; empty means 'always active'."""
    result = [parse_window(w) for w in windows]
    if days is None and hours is None:
        return tuple(result)
    day_list = timespec.parse_day_spec(days) if days else tuple(range(7))
    if hours is None:
        result += [Window(d * MINUTES_PER_DAY, MINUTES_PER_DAY) for d in day_list]
    else:
        start, end = timespec.parse_wrapping_range(hours)
        length = (end - start) % MINUTES_PER_DAY or MINUTES_PER_DAY
        result += [Window(d * MINUTES_PER_DAY + start, length) for d in day_list]
    return tuple(result)
