"""Coverage gaps: times when a line's cascade would ring nobody.

A line needs coverage whenever it is not forwarded to a switchboard (business
hours with `in_business_hours`); it is covered if its route for that period
has a fixed person, or a rota with someone on call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from astreinte_ari.config.model import AppConfig, LineConfig
from astreinte_ari.config.references import ROUTE_KEYS
from astreinte_ari.routing.calendar import resolve_period
from astreinte_ari.routing.plan import Period
from astreinte_ari.routing.router import route_for
from astreinte_ari.schedule.labour import Finding, Intervention, programme_findings
from astreinte_ari.schedule.layers import local_to_utc
from astreinte_ari.schedule.rota import shifts, who_is_on_call


def _calendar_cuts(line: LineConfig, tz: str, start: datetime, end: datetime) -> set[datetime]:
    """Local instants where the line's period may change (midnight, opening ranges, night)."""
    zone = ZoneInfo(tz)
    hours = line.business_hours
    minutes_by_day: list[set[int]] = [{0} for _ in range(7)]
    if hours is not None:
        for weekday, ranges in enumerate(hours.weekly()):
            for lo, hi in ranges:
                minutes_by_day[weekday].update((lo, hi % 1440))
        if hours.night_range is not None:
            for day_minutes in minutes_by_day:
                day_minutes.update(m % 1440 for m in hours.night_range)
    cuts: set[datetime] = set()
    day = start.astimezone(zone).date()
    while (midnight := datetime.combine(day, time())) < end.astimezone(zone).replace(tzinfo=None):
        for minute in minutes_by_day[day.weekday()]:
            instant = local_to_utc(midnight + timedelta(minutes=minute), zone)
            if start < instant < end:
                cuts.add(instant)
        day += timedelta(days=1)
    return cuts


def _covered(config: AppConfig, line: LineConfig, at: datetime) -> bool:
    period = resolve_period(line, at, config.timezone)
    if period is Period.BUSINESS and line.in_business_hours is not None:
        return True
    team = config.teams[line.team]
    for hop in route_for(line, period).hops:
        if hop.people():
            return True
        if any(who_is_on_call(team, rota, at) is not None for rota in hop.rotas()):
            return True
    return False


def coverage_findings(
    config: AppConfig, team_name: str, start: datetime, end: datetime
) -> list[Finding]:
    """Gaps over [start, end) for every line of `team_name` (aware datetimes)."""
    team = config.teams[team_name]
    level = team.labour.coverage
    if level == "off":
        return []
    found: list[Finding] = []
    for did, line in config.lines.items():
        if line.team != team_name:
            continue
        cuts = _calendar_cuts(line, config.timezone, start, end)
        rotas = {
            rota
            for key in ROUTE_KEYS
            if (route := getattr(line, key)) is not None
            for hop in route.hops
            for rota in hop.rotas()
        }
        for rota in rotas:
            for shift in shifts(team, rota, start, end):
                cuts.update(t for t in (shift.start, shift.end) if start < t < end)
        gap_start: datetime | None = None
        for a in [start, *sorted(cuts)]:
            if _covered(config, line, a):
                if gap_start is not None:
                    found.append(_gap(level, team_name, did, line, gap_start, a))
                    gap_start = None
            elif gap_start is None:
                gap_start = a
        if gap_start is not None:
            found.append(_gap(level, team_name, did, line, gap_start, end))
    return found


def _gap(
    level: str, team: str, did: str, line: LineConfig, start: datetime, end: datetime
) -> Finding:
    return Finding(
        level,  # type: ignore[arg-type]
        "coverage",
        team,
        "",
        start,
        end,
        f"line {did} ({line.name}) would ring nobody",
    )


def programme_report(
    config: AppConfig,
    now: datetime,
    *,
    previous: AppConfig | None = None,
    interventions: Sequence[Intervention] = (),
) -> list[Finding]:
    """Labour-law and coverage findings of every team, each over its horizon from `now`."""
    found: list[Finding] = []
    for name, team in config.teams.items():
        end = now + timedelta(days=team.labour.horizon_days)
        before = previous.teams.get(name) if previous is not None else None
        found += programme_findings(
            name, team, now, end, interventions=interventions, previous=before, now=now
        )
        found += coverage_findings(config, name, now, end)
    return found
