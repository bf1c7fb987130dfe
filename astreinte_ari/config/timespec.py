"""Parsers for the small time notations ops staff write in the YAML.

Kept apart from the models so that the schedule and calendar layers can reuse
the parsed forms, and so that every message names the expected notation.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_hhmm(text: str, *, allow_24: bool = False) -> int:
    """'18:00' -> minutes since midnight. '24:00' only where it means end of day."""
    m = _TIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not a time like 08:00 or 18:30")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(f"'{text}' is not a valid time of day")
    return hours * 60 + minutes


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_weekday(text: str) -> int:
    """'fri' (or 'friday') -> 4, Monday being 0 like date.weekday()."""
    key = text.strip().lower()
    if key in WEEKDAYS:
        return WEEKDAYS.index(key)
    if key in _FULL_NAMES:
        return _FULL_NAMES.index(key)
    raise ValueError(f"'{text}' is not a day (use one of {', '.join(WEEKDAYS)})")


def parse_day_spec(text: str) -> tuple[int, ...]:
    """'mon-fri' / 'sat' / 'mon,wed,fri' / 'fri-mon' -> sorted weekday numbers."""
    days: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            first, last = (parse_weekday(p) for p in part.split("-", 1))
            day = first
            days.add(day)
            while day != last:  # wraps around the week, e.g. fri-mon
                day = (day + 1) % 7
                days.add(day)
        else:
            days.add(parse_weekday(part))
    return tuple(sorted(days))


def parse_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """'08:00-12:00,13:30-18:00' -> ((480, 720), (810, 1080)); same-day ranges only."""
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        if "-" not in part:
            raise ValueError(f"'{part.strip()}' is not a range like 08:00-12:00")
        start_s, end_s = part.split("-", 1)
        start, end = parse_hhmm(start_s), parse_hhmm(end_s, allow_24=True)
        if start >= end:
            raise ValueError(
                f"range '{part.strip()}' ends before it starts "
                "(business hours cannot cross midnight; split them per day)"
            )
        ranges.append((start, end))
    ranges.sort()
    for (_, prev_end), (next_start, _) in itertools.pairwise(ranges):
        if next_start < prev_end:
            raise ValueError(f"ranges in '{text}' overlap")
    return tuple(ranges)


def parse_wrapping_range(text: str) -> tuple[int, int]:
    """'20:00-08:00' -> (1200, 480); may cross midnight (used for the night)."""
    if "-" not in text:
        raise ValueError(f"'{text}' is not a range like 20:00-08:00")
    start_s, end_s = text.split("-", 1)
    start, end = parse_hhmm(start_s), parse_hhmm(end_s, allow_24=True)
    if start == end:
        raise ValueError(f"range '{text}' is empty")
    return start, end


def in_wrapping_range(minute: int, rng: tuple[int, int]) -> bool:
    start, end = rng
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


@dataclass(frozen=True, slots=True)
class Handoff:
    """When a rota changes hands: optional weekday plus local time of day."""

    weekday: int | None
    minute: int  # minutes since local midnight


def parse_handoff(text: str) -> Handoff:
    """'fri 18:00' -> Handoff(4, 1080); '08:00' -> Handoff(None, 480)."""
    parts = text.split()
    if len(parts) == 1:
        return Handoff(None, parse_hhmm(parts[0]))
    if len(parts) == 2:
        return Handoff(parse_weekday(parts[0]), parse_hhmm(parts[1]))
    raise ValueError(f"'{text}' is not a handoff like 'fri 18:00' or '08:00'")


_EVERY_RE = re.compile(r"^(?:(\d+)\s+)?(day|days|week|weeks)$")


def parse_every(text: str | int) -> int:
    """'week' -> 7, 'day' -> 1, '2 weeks' -> 14, '3 days' -> 3 (length in days)."""
    m = _EVERY_RE.match(str(text).strip().lower())
    if not m:
        raise ValueError(f"'{text}' is not a rotation length (use week, day, '2 weeks', '3 days')")
    count = int(m.group(1) or 1)
    if count < 1:
        raise ValueError("rotation length must be at least 1")
    return count * (7 if m.group(2).startswith("week") else 1)
