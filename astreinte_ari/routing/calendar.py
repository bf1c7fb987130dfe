"""Which period of the calendar an instant falls in, for one line.

Order of precedence: holiday > business > weekend > night > after_hours.
A line without `business_hours` is always after hours (a pure on-call line).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from astreinte_ari.config.model import BusinessHours, LineConfig
from astreinte_ari.config.timespec import in_wrapping_range
from astreinte_ari.public_holidays import public_holiday_dates
from astreinte_ari.routing.plan import Period

_SATURDAY = 5


def is_holiday(hours: BusinessHours, day: date) -> bool:
    if day in hours.closures:
        return True
    if hours.holidays is None:
        return False
    return day in public_holiday_dates(hours.holidays, hours.holiday_subdiv, day.year)


def is_business_time(hours: BusinessHours, local: datetime) -> bool:
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in hours.weekly()[local.weekday()])


def resolve_period(line: LineConfig, at: datetime, tz: str) -> Period:
    """Period of `line` at the aware instant `at`, judged in local time of `tz`."""
    if at.tzinfo is None:
        raise ValueError(f"resolve_period needs an aware datetime, got {at.isoformat()}")
    hours = line.business_hours
    if hours is None:
        return Period.AFTER_HOURS
    local = at.astimezone(ZoneInfo(tz))
    if is_holiday(hours, local.date()):
        return Period.HOLIDAY
    if is_business_time(hours, local):
        return Period.BUSINESS
    if local.weekday() >= _SATURDAY:
        return Period.WEEKEND
    night = hours.night_range
    if night is not None and in_wrapping_range(local.hour * 60 + local.minute, night):
        return Period.NIGHT
    return Period.AFTER_HOURS
