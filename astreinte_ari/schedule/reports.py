"""Views of the programme for ops staff: month grid, fairness counts, iCalendar.

Pure functions of (configuration, dates); the CLI prints what they return.
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from astreinte_ari.config.model import TeamConfig
from astreinte_ari.schedule.engine import is_public_holiday
from astreinte_ari.schedule.layers import local_to_utc
from astreinte_ari.schedule.rota import Shift, shifts, who_is_on_call

MARKS = {"rotation": "", "swap": "~", "override": "*", "holiday": "!", "closure": "!"}
LEGEND = "~ swap   * override   ! holiday/closure rule   - nobody   (H) public holiday"


def _zone(team: TeamConfig) -> ZoneInfo:
    return ZoneInfo(team.timezone or "UTC")


def day_bounds(team: TeamConfig, day: date) -> tuple[datetime, datetime]:
    zone = _zone(team)
    return (
        local_to_utc(datetime.combine(day, time()), zone),
        local_to_utc(datetime.combine(day + timedelta(days=1), time()), zone),
    )


def _cell(team: TeamConfig, rota: str, day: date) -> str:
    begin, end = day_bounds(team, day)
    parts: list[str] = []
    cursor = begin
    for shift in shifts(team, rota, begin, end):
        label = shift.person_id + MARKS[shift.source]
        if shift.start > cursor:
            parts.append(f"{cursor.astimezone(_zone(team)):%H:%M} -")
        if parts or shift.start > begin:
            label = f"{shift.start.astimezone(_zone(team)):%H:%M} {label}"
        parts.append(label)
        cursor = shift.end
    if not parts:
        return "-"
    if cursor < end:
        parts.append(f"{cursor.astimezone(_zone(team)):%H:%M} -")
    return ", ".join(parts)


def month_grid(team_name: str, team: TeamConfig, year: int, month: int) -> str:
    """A readable month of the team's rotas: one line per day, one column per rota."""
    rotas = list(team.rotas)
    days = [date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]
    cells = {(r, d): _cell(team, r, d) for r in rotas for d in days}
    widths = {r: max(len(r), *(len(cells[(r, d)]) for d in days)) for r in rotas}
    title = f"Team {team_name} - {calendar.month_name[month]} {year} ({team.timezone})"
    header = "           " + "  ".join(r.ljust(widths[r]) for r in rotas)
    lines = [title, "", header.rstrip()]
    for d in days:
        mark = "(H)" if is_public_holiday(team.holidays, d) else "   "
        row = "  ".join(cells[(r, d)].ljust(widths[r]) for r in rotas)
        lines.append(f"{d:%a %d} {mark}  {row}".rstrip())
        if d.weekday() == 6 and d != days[-1]:
            lines.append("")
    lines += ["", LEGEND]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class FairnessRow:
    person: str
    weekend_days: int
    holiday_days: int
    periods: int


def fairness(team: TeamConfig, year: int) -> list[FairnessRow]:
    """Per person, over `year`: weekend days and public-holiday days on call (a
    day counts once per rota held at 12:00 local), and on-call periods started."""
    weekend: Counter[str] = Counter()
    holiday: Counter[str] = Counter()
    periods: Counter[str] = Counter()
    zone = _zone(team)
    day = date(year, 1, 1)
    while day.year == year:
        weekend_day = day.weekday() >= 5
        holiday_day = is_public_holiday(team.holidays, day)
        if weekend_day or holiday_day:
            noon = local_to_utc(datetime.combine(day, time(12)), zone)
            for rota in team.rotas:
                person = who_is_on_call(team, rota, noon)
                if person is not None:
                    weekend[person] += weekend_day
                    holiday[person] += holiday_day
        day += timedelta(days=1)
    begin, end = day_bounds(team, date(year, 1, 1))[0], day_bounds(team, date(year, 12, 31))[1]
    for rota in team.rotas:
        for shift in shifts(team, rota, begin, end):
            periods[shift.person_id] += 1
    return [
        FairnessRow(p, weekend[p], holiday[p], periods[p])
        for p in sorted(team.people, key=lambda p: (-weekend[p] - holiday[p], p))
    ]


def team_events(
    team_name: str,
    team: TeamConfig,
    start: datetime,
    end: datetime,
    *,
    person: str | None = None,
) -> list[tuple[str, Shift]]:
    """(rota, shift) over [start, end), for one person or the whole team."""
    found = [(rota, s) for rota in team.rotas for s in shifts(team, rota, start, end)]
    return sorted(
        ((r, s) for r, s in found if person is None or s.person_id == person),
        key=lambda item: (item[1].start, item[0]),
    )


def ical_feed(
    team_name: str,
    team: TeamConfig,
    start: datetime,
    end: datetime,
    *,
    person: str | None = None,
    stamp: datetime | None = None,
) -> bytes:
    """An iCalendar feed (RFC 5545) of the shifts, in the team's zone with VTIMEZONE."""
    zone = _zone(team)
    import icalendar  # here, not at the top: `astreinte run` loads this module (~1.5 MB)

    cal = icalendar.Calendar()
    cal.add("prodid", "-//astreinte-ari//rota//FR")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"Astreinte {team_name}" + (f" - {person}" if person else ""))
    for rota, shift in team_events(team_name, team, start, end, person=person):
        who = team.people[shift.person_id].name if shift.person_id in team.people else ""
        event = icalendar.Event()
        event.add("uid", f"{team_name}.{rota}.{shift.start:%Y%m%dT%H%M%SZ}@astreinte-ari")
        event.add("dtstamp", stamp or datetime.now(UTC))
        event.add("dtstart", shift.start.astimezone(zone))
        event.add("dtend", shift.end.astimezone(zone))
        event.add("summary", f"Astreinte {rota}: {who} ({shift.person_id})")
        details = [f"source: {shift.source}"]
        if shift.layer:
            details.append(f"layer: {shift.layer}")
        if shift.reason:
            details.append(f"reason: {shift.reason}")
        if shift.requested_by:
            details.append(f"requested by: {shift.requested_by}")
        event.add("description", "\n".join(details))
        event.add("categories", [rota])
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


FEED_DAYS_BACK, FEED_DAYS_AHEAD = 31, 365  # what a subscribed calendar shows


def feed_day(team: TeamConfig, now: datetime) -> date:
    """The team's local day: a subscription feed is the same all day long."""
    return now.astimezone(_zone(team)).date()


def subscription_feed(
    team_name: str, team: TeamConfig, now: datetime, *, person: str | None = None
) -> bytes:
    """The feed a subscribed calendar fetches: `ical_feed` over the team's local days
    from FEED_DAYS_BACK ago to FEED_DAYS_AHEAD ahead. DTSTAMP is the day's start,
    so two fetches on the same day give the same bytes (same ETag) unless the
    programme changed; UIDs come from the rota and the shift's start, so a
    calendar updates its events rather than duplicating them."""
    today = feed_day(team, now)
    begin = day_bounds(team, today - timedelta(days=FEED_DAYS_BACK))[0]
    end = day_bounds(team, today + timedelta(days=FEED_DAYS_AHEAD))[0]
    stamp = datetime.combine(today, time(), UTC)
    return ical_feed(team_name, team, begin, end, person=person, stamp=stamp)
