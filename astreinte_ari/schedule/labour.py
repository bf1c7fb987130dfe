"""Labour-law checks of an on-call programme (pure; French defaults).

- daily rest: between two rests of at least `daily_rest.hours` (11 h) there are
  at most 24 h - 11 h = 13 h (the working day's amplitude);
- weekly rest: every local week (Mon-Sun) meets a rest of `weekly_rest.hours` (35 h);
  work is the team's `work_hours` plus interventions (answered calls), not the
  on-call time itself (French law counts astreinte as rest, interventions as work);
- at most N on-call periods per person per month (off unless `count` is set);
- notice: a shift starting within `notice.days` of now changed against the
  previous accepted configuration;
- double booking: one person holding two rotas at the same instant.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from astreinte_ari.config.model import TeamConfig
from astreinte_ari.config.rotas import RuleLevel
from astreinte_ari.schedule.layers import local_to_utc
from astreinte_ari.schedule.rota import Shift, shifts


@dataclass(frozen=True, slots=True)
class Finding:
    level: RuleLevel
    rule: str  # daily_rest, weekly_rest, max_periods_per_month, notice, double_booking, coverage
    team: str
    person: str  # person id, or "" for coverage gaps
    start: datetime  # UTC
    end: datetime
    message: str

    def describe(self, tz: str) -> str:
        zone = ZoneInfo(tz)
        span = (
            f"{self.start.astimezone(zone):%Y-%m-%d %H:%M} -> "
            f"{self.end.astimezone(zone):%Y-%m-%d %H:%M}"
        )
        who = f" {self.person}" if self.person else ""
        return f"{self.level}: [{self.rule}] team {self.team}{who} {span}: {self.message}"


@dataclass(frozen=True, slots=True)
class Intervention:
    """Time a person actually worked on a call (from the audit trail)."""

    person_id: str
    start: datetime
    end: datetime


def team_shifts(team: TeamConfig, start: datetime, end: datetime) -> dict[str, list[Shift]]:
    return {rota: shifts(team, rota, start, end) for rota in team.rotas}


def _merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _work_hours(
    team: TeamConfig, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    zone = ZoneInfo(team.timezone or "UTC")
    weekly = team.labour.weekly_work()
    out = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    while (midnight := datetime.combine(day, time())) < end.astimezone(zone).replace(tzinfo=None):
        for lo, hi in weekly[day.weekday()]:
            out.append(
                (
                    local_to_utc(midnight + timedelta(minutes=lo), zone),
                    local_to_utc(midnight + timedelta(minutes=hi), zone),
                )
            )
        day += timedelta(days=1)
    return out


def _rest_findings(
    name: str, team: TeamConfig, person: str, work: list[tuple[datetime, datetime]]
) -> list[Finding]:
    found: list[Finding] = []
    rules = team.labour
    daily = timedelta(hours=rules.daily_rest.hours)
    # Rests between work blocks; the ones long enough count as daily rests.
    rests = [(a[1], b[0]) for a, b in itertools.pairwise(work) if b[0] - a[1] >= daily]
    if rules.daily_rest.level != "off" and work:
        bounds = [(work[0][0], work[0][0]), *rests, (work[-1][1], work[-1][1])]
        amplitude = timedelta(hours=24) - daily
        for (_, day_start), (day_end, _) in itertools.pairwise(bounds):
            if day_end - day_start > amplitude:
                found.append(
                    Finding(
                        rules.daily_rest.level,
                        "daily_rest",
                        name,
                        person,
                        day_start,
                        day_end,
                        f"no rest of {rules.daily_rest.hours:g} consecutive hours for "
                        f"{(day_end - day_start).total_seconds() / 3600:.1f} h "
                        "(work hours and interventions)",
                    )
                )
    if rules.weekly_rest.level != "off" and work:
        weekly = timedelta(hours=rules.weekly_rest.hours)
        long_rests = [(a[1], b[0]) for a, b in itertools.pairwise(work) if b[0] - a[1] >= weekly]
        zone = ZoneInfo(team.timezone or "UTC")
        monday = work[0][0].astimezone(zone).date()
        monday -= timedelta(days=monday.weekday())
        while (week := local_to_utc(datetime.combine(monday, time()), zone)) < work[-1][1]:
            week_end = local_to_utc(datetime.combine(monday + timedelta(days=7), time()), zone)
            inside = week >= work[0][0] and week_end <= work[-1][1]
            if inside and not any(s < week_end and e > week for s, e in long_rests):
                found.append(
                    Finding(
                        rules.weekly_rest.level,
                        "weekly_rest",
                        name,
                        person,
                        week,
                        week_end,
                        f"no weekly rest of {rules.weekly_rest.hours:g} consecutive hours",
                    )
                )
            monday += timedelta(days=7)
    return found


def programme_findings(
    name: str,
    team: TeamConfig,
    start: datetime,
    end: datetime,
    *,
    interventions: Sequence[Intervention] = (),
    previous: TeamConfig | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Every labour-law finding for `team` over [start, end) (aware datetimes)."""
    rules = team.labour
    by_rota = team_shifts(team, start, end)
    found: list[Finding] = []
    by_person: dict[str, list[tuple[Shift, str]]] = defaultdict(list)
    for rota, items in by_rota.items():
        for shift in items:
            by_person[shift.person_id].append((shift, rota))

    if rules.double_booking != "off":
        for person, held in by_person.items():
            held.sort(key=lambda x: x[0].start)
            for (a, ra), (b, rb) in itertools.combinations(held, 2):
                if ra != rb and a.start < b.end and b.start < a.end:
                    found.append(
                        Finding(
                            rules.double_booking,
                            "double_booking",
                            name,
                            person,
                            max(a.start, b.start),
                            min(a.end, b.end),
                            f"on call in both '{min(ra, rb)}' and '{max(ra, rb)}'",
                        )
                    )

    limit = rules.max_periods_per_month
    if limit.count is not None and limit.level != "off":
        zone = ZoneInfo(team.timezone or "UTC")
        counts: dict[tuple[str, date], list[Shift]] = defaultdict(list)
        for person, held in by_person.items():
            for shift, _ in held:
                month = shift.start.astimezone(zone).date().replace(day=1)
                counts[(person, month)].append(shift)
        for (person, month), items in sorted(counts.items()):
            if len(items) > limit.count:
                found.append(
                    Finding(
                        limit.level,
                        "max_periods_per_month",
                        name,
                        person,
                        min(s.start for s in items),
                        max(s.end for s in items),
                        f"{len(items)} on-call periods in {month:%Y-%m} (limit {limit.count})",
                    )
                )

    people = sorted(by_person)
    base_work = _work_hours(team, start, end)
    for person in people:
        worked = [(i.start, i.end) for i in interventions if i.person_id == person]
        if base_work or worked:
            found += _rest_findings(name, team, person, _merge(base_work + worked))

    if previous is not None and rules.notice.level != "off":
        found += notice_findings(name, team, previous, now or datetime.now(UTC))
    return found


def notice_findings(
    name: str, team: TeamConfig, previous: TeamConfig, now: datetime
) -> list[Finding]:
    """Changes of holder between `previous` and `team` within the notice window."""
    rule = team.labour.notice
    end = now + timedelta(days=rule.days)
    found: list[Finding] = []
    for rota in team.rotas:
        if rota not in previous.rotas:
            continue
        new = shifts(team, rota, now, end)
        old = shifts(previous, rota, now, end)
        cuts = sorted({now, end, *(s.start for s in new + old), *(s.end for s in new + old)})
        for a, b in itertools.pairwise(cuts):
            was = next((s.person_id for s in old if s.start <= a < s.end), None)
            now_holder = next((s.person_id for s in new if s.start <= a < s.end), None)
            if was != now_holder:
                person = now_holder or was or ""
                last = found[-1] if found else None
                if last and last.end == a and last.person == person and rota in last.message:
                    found[-1] = Finding(
                        last.level, last.rule, name, person, last.start, b, last.message
                    )
                    continue
                found.append(
                    Finding(
                        rule.level,
                        "notice",
                        name,
                        person,
                        a,
                        b,
                        f"rota '{rota}' changed from {was or 'nobody'} to {now_holder or 'nobody'} "
                        f"less than {rule.days} days ahead",
                    )
                )
    return found
