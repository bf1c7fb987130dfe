"""How the commands that show calls write times, durations and callers: the
`calls list` table and the `calls show` timeline print them alike."""

from __future__ import annotations

from datetime import datetime, tzinfo


def local_time(value: datetime | None, zone: tzinfo | None = None) -> str:
    """`2026-03-01 23:15:00` in `zone` (the machine's when None); "-" for no time."""
    return "-" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """`42s`, `3m07s`; "-" when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def caller_label(number: str, name: str) -> str:
    """`+33612345678 (Name)`, whichever of the two the network gave."""
    if number and name:
        return f"{number} ({name})"
    return number or name or "(unknown)"
