"""What the planning pages show, as plain values: computed from the configuration
in force and the time, for one viewer (pure: no I/O, no HTML)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from astreinte_ari.config.model import AppConfig, TeamConfig
from astreinte_ari.public_holidays import public_holiday_dates
from astreinte_ari.routing.plan import Hop
from astreinte_ari.routing.router import OnCallOverride, build_plan
from astreinte_ari.schedule.layers import local_to_utc
from astreinte_ari.schedule.rota import Shift, shifts
from astreinte_ari.web.auth import Viewer

LOOKAHEAD = timedelta(days=62)  # how far "until" looks for the end of a shift


@dataclass(frozen=True, slots=True)
class HopView:
    label: str
    people: tuple[str, ...]  # names; several for a ring-all hop
    timeout_s: int


@dataclass(frozen=True, slots=True)
class LineNow:
    did: str
    name: str
    team: str
    period: str
    hops: tuple[HopView, ...]
    final: str  # "voicemail" | "hangup"


@dataclass(frozen=True, slots=True)
class RotaNow:
    team: str
    rota: str
    person_id: str | None
    person_name: str | None
    until: datetime | None  # local time of the team


@dataclass(frozen=True, slots=True)
class Entry:
    """One shift piece within one day (or within the year, for the year view)."""

    rota: str
    person_id: str
    person_name: str
    start: datetime  # local
    end: datetime  # local
    source: str  # rotation | swap | override | holiday | closure
    reason: str | None
    requested_by: str | None
    whole_day: bool = True


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    holiday: bool
    closure: bool
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class MonthView:
    team: str
    year: int
    month: int
    rotas: tuple[str, ...]
    days: tuple[Day, ...]
    person: str | None = None


@dataclass(frozen=True, slots=True)
class YearView:
    team: str
    year: int
    entries: tuple[Entry, ...]
    holidays: tuple[date, ...]
    person: str | None = None


def zone_of(team: TeamConfig) -> ZoneInfo:
    return ZoneInfo(team.timezone or "UTC")


def _hop_view(hop: Hop) -> HopView:
    members = hop.members or (hop,)
    return HopView(hop.label, tuple(m.person_name for m in members), hop.ring_timeout_s)


def on_call_now(
    config: AppConfig,
    viewer: Viewer,
    now: datetime,
    override: OnCallOverride | None = None,
) -> tuple[list[LineNow], list[RotaNow]]:
    """Each visible line's cascade as a call would get it now, and each visible
    rota's holder (with the runtime replacements the service applies)."""
    lines: list[LineNow] = []
    for did, line in config.lines.items():
        if not viewer.sees(line.team):
            continue
        plan = build_plan(config, did, now, on_call_override=override)
        if plan is None:
            continue
        lines.append(
            LineNow(
                did=did,
                name=line.name,
                team=line.team,
                period=str(plan.period),
                hops=tuple(_hop_view(h) for h in plan.hops),
                final=str(plan.final),
            )
        )
    rotas: list[RotaNow] = []
    for team_name in viewer.visible_teams(config):
        team = config.teams[team_name]
        for rota in team.rotas:
            rotas.append(_rota_now(team_name, team, rota, now, override))
    return lines, rotas


def _rota_now(
    name: str, team: TeamConfig, rota: str, now: datetime, override: OnCallOverride | None
) -> RotaNow:
    ahead = shifts(team, rota, now, now + LOOKAHEAD)
    current = ahead[0] if ahead and ahead[0].start <= now else None
    person_id = current.person_id if current else None
    replaced = override(name, rota, now) if override else None
    if replaced is not None and replaced != person_id:
        person_id, current = replaced, None  # a runtime replacement: its end is not known here
    person = team.people.get(person_id) if person_id else None
    # A shift that reaches the horizon: its end is too far to say (a one-person rota).
    known = current is not None and current.end < now + LOOKAHEAD
    until = current.end.astimezone(zone_of(team)) if current and known else None
    return RotaNow(name, rota, person_id, person.name if person else person_id, until)


def _entry(team: TeamConfig, s: Shift, lo: datetime, hi: datetime) -> Entry:
    zone = zone_of(team)
    person = team.people.get(s.person_id)
    start, end = max(s.start, lo), min(s.end, hi)
    return Entry(
        rota=s.rota,
        person_id=s.person_id,
        person_name=person.name if person else s.person_id,
        start=start.astimezone(zone),
        end=end.astimezone(zone),
        source=str(s.source),
        reason=s.reason,
        requested_by=s.requested_by,
        whole_day=start == lo and end == hi,
    )


def closure_days(team: TeamConfig, first: date, last: date) -> set[date]:
    days: set[date] = set()
    for rule in team.holiday_rules:
        if rule.from_ is not None and rule.to is not None:
            day = max(rule.from_, first)
            while day <= min(rule.to, last):
                days.add(day)
                day += timedelta(days=1)
    return days


def holidays_between(team: TeamConfig, first: date, last: date) -> set[date]:
    country = team.holidays.country
    if country is None:
        return set()
    found: set[date] = set()
    for year in range(first.year, last.year + 1):
        found |= public_holiday_dates(country, team.holidays.subdiv, year)
    return {d for d in found if first <= d <= last}


def _local_midnight(team: TeamConfig, day: date) -> datetime:
    return local_to_utc(datetime.combine(day, time()), zone_of(team))


def month_view(
    config: AppConfig, team_name: str, year: int, month: int, person: str | None = None
) -> MonthView:
    """Every day of the month, each rota's holders that day; `person`: theirs only.
    The shifts are computed once for the month, then cut at local midnights."""
    team = config.teams[team_name]
    first = date(year, month, 1)
    count = calendar.monthrange(year, month)[1]
    last = first + timedelta(days=count - 1)
    bounds = [_local_midnight(team, first + timedelta(days=i)) for i in range(count + 1)]
    by_rota = {r: shifts(team, r, bounds[0], bounds[-1]) for r in team.rotas}
    holidays = holidays_between(team, first, last)
    closures = closure_days(team, first, last)
    days: list[Day] = []
    cursor = dict.fromkeys(team.rotas, 0)
    for i in range(count):
        lo, hi = bounds[i], bounds[i + 1]
        entries: list[Entry] = []
        for rota, found in by_rota.items():
            j = cursor[rota]
            while j < len(found) and found[j].end <= lo:
                j += 1
            cursor[rota] = j
            while j < len(found) and found[j].start < hi:
                if person is None or found[j].person_id == person:
                    entries.append(_entry(team, found[j], lo, hi))
                j += 1
        day = first + timedelta(days=i)
        days.append(Day(day, day in holidays, day in closures, tuple(entries)))
    return MonthView(team_name, year, month, tuple(team.rotas), tuple(days), person)


def year_view(config: AppConfig, team_name: str, year: int, person: str | None = None) -> YearView:
    """The year's shifts, one entry per shift (cut at the year's edges)."""
    team = config.teams[team_name]
    lo = _local_midnight(team, date(year, 1, 1))
    hi = _local_midnight(team, date(year + 1, 1, 1))
    entries = [
        _entry(team, s, max(s.start, lo), min(s.end, hi))
        for rota in team.rotas
        for s in shifts(team, rota, lo, hi)
        if person is None or s.person_id == person
    ]
    entries.sort(key=lambda e: (e.start, e.rota))
    holidays = sorted(holidays_between(team, date(year, 1, 1), date(year, 12, 31)))
    return YearView(team_name, year, tuple(entries), tuple(holidays), person)


def local_now(config: AppConfig, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(config.timezone)) if now.tzinfo else now.replace(tzinfo=UTC)


def person_teams(config: AppConfig, person_id: str) -> list[str]:
    return [n for n, t in config.teams.items() if person_id in t.people]
