"""Managers' indicators over a period, aggregated in SQL (a handful of queries,
whatever the number of calls), on SQLite and PostgreSQL alike.

Calls are grouped by UTC hour in SQL, then those buckets (at most 24 per day)
are placed into local days and hours of the week here: exact for every zone
whose UTC offset is a whole number of hours (all of Europe, DST included).

Definitions (docs/audit-and-reports.md):
- answered = accepted + connected; voicemail = voicemail + voicemail_empty;
  rates are over all calls of the period (calls still in progress included);
- time to answer = answered_at - started_at of answered calls; percentiles
  interpolate linearly (PostgreSQL percentile_cont; `statistics.quantiles(...,
  method="inclusive")` gives the same);
- the lines' test calls (outcomes test_passed, test_failed) are not counted;
- per person: accepted (accepted/connected), declined (declined/rejected),
  missed (no_answer/busy/unreachable/not_accepted), other (cancelled,
  refused, failed, in progress).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from astreinte_ari.adapters.store.models import calls_table, hops_table
from astreinte_ari.adapters.store.sql_time import seconds_between, utc_hour_bucket

_TEST_OUTCOMES = ("test_passed", "test_failed")  # callflow.outcomes.TEST_OUTCOMES
ANSWERED = ("accepted", "connected")
VOICEMAIL = ("voicemail", "voicemail_empty")
PERSON_CLASSES = {
    "accepted": "accepted",
    "connected": "accepted",
    "declined": "declined",
    "rejected": "declined",
    "no_answer": "missed",
    "busy": "missed",
    "unreachable": "missed",
    "not_accepted": "missed",
}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class PersonStats:
    rung: int = 0
    accepted: int = 0
    declined: int = 0
    missed: int = 0
    other: int = 0


@dataclass(slots=True)
class Report:
    since: datetime
    until: datetime
    timezone: str
    line: str | None
    total: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    per_day: dict[str, int] = field(default_factory=dict)  # local "YYYY-MM-DD" -> calls
    hour_of_week: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])
    answered: int = 0
    abandoned: int = 0
    voicemail: int = 0
    tta_median: float | None = None
    tta_p90: float | None = None
    talk_total: float = 0.0
    talk_mean: float | None = None
    talk_median: float | None = None
    per_hop: dict[int, dict[str, int]] = field(default_factory=dict)  # hop seq -> outcome -> n
    per_person: dict[str, PersonStats] = field(default_factory=dict)

    def rate(self, count: int) -> float | None:
        return None if self.total == 0 else count / self.total

    @property
    def answer_rate(self) -> float | None:
        return self.rate(self.answered)

    @property
    def abandon_rate(self) -> float | None:
        return self.rate(self.abandoned)

    @property
    def voicemail_rate(self) -> float | None:
        return self.rate(self.voicemail)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "from": self.since.isoformat(),
            "to": self.until.isoformat(),
            "timezone": self.timezone,
            "line": self.line,
            "calls": self.total,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "voicemail": self.voicemail,
            "answer_rate": self.answer_rate,
            "abandon_rate": self.abandon_rate,
            "voicemail_rate": self.voicemail_rate,
            "time_to_answer_s": {"median": self.tta_median, "p90": self.tta_p90},
            "talk_time_s": {
                "total": self.talk_total,
                "mean": self.talk_mean,
                "median": self.talk_median,
            },
            "outcomes": dict(sorted(self.by_outcome.items())),
            "per_day": self.per_day,
            "hour_of_week": {WEEKDAYS[d]: row for d, row in enumerate(self.hour_of_week)},
            "per_hop": {str(k): dict(sorted(v.items())) for k, v in sorted(self.per_hop.items())},
            "per_person": {
                p: {
                    "rung": s.rung,
                    "accepted": s.accepted,
                    "declined": s.declined,
                    "missed": s.missed,
                    "other": s.other,
                }
                for p, s in sorted(self.per_person.items())
            },
        }


def _filters(since: datetime, until: datetime, line: str | None) -> list[ColumnElement[bool]]:
    where = [
        calls_table.c.started_at >= since,
        calls_table.c.started_at < until,
        # The lines' test calls are no customer's: left out of every indicator (an
        # outcome test, covered by the report index; one still running, seconds
        # long, has no outcome yet and counts as in progress).
        or_(calls_table.c.outcome.is_(None), calls_table.c.outcome.not_in(_TEST_OUTCOMES)),
    ]
    if line is not None:
        where.append(calls_table.c.did == line)
    return where


def build_report(
    engine: Engine, since: datetime, until: datetime, *, timezone: str, line: str | None = None
) -> Report:
    """KPIs of calls started in [since, until) (aware datetimes), optionally one line."""
    report = Report(since, until, timezone, line)
    where = _filters(since, until, line)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        _volume(conn, report, where, dialect, ZoneInfo(timezone))
        answered = [*where, calls_table.c.answered_at.is_not(None)]
        tta = seconds_between(dialect, calls_table.c.started_at, calls_table.c.answered_at)
        report.tta_median, report.tta_p90 = _percentiles(conn, dialect, tta, answered, (0.5, 0.9))
        talking = [*where, calls_table.c.talk_seconds.is_not(None)]
        total, mean = conn.execute(
            select(
                func.sum(calls_table.c.talk_seconds), func.avg(calls_table.c.talk_seconds)
            ).where(*talking)
        ).one()
        report.talk_total = float(total or 0.0)
        report.talk_mean = None if mean is None else float(mean)
        (report.talk_median,) = _percentiles(
            conn, dialect, calls_table.c.talk_seconds, talking, (0.5,)
        )
        _hops(conn, report, where)
    return report


def _volume(
    conn: Connection, report: Report, where: list[Any], dialect: str, zone: ZoneInfo
) -> None:
    bucket = utc_hour_bucket(dialect, calls_table.c.started_at).label("bucket")
    stmt = (
        select(bucket, calls_table.c.outcome, func.count())
        .where(*where)
        .group_by(bucket, calls_table.c.outcome)
    )
    per_day: dict[str, int] = defaultdict(int)
    local_hours: dict[str, tuple[str, int, int]] = {}  # a bucket per outcome: convert once
    for hour_text, outcome, count in conn.execute(stmt):
        place = local_hours.get(hour_text)
        if place is None:
            utc = datetime.fromisoformat(f"{hour_text}:00").replace(tzinfo=UTC)
            local = utc.astimezone(zone)
            place = local_hours[hour_text] = (local.date().isoformat(), local.weekday(), local.hour)
        day, weekday, hour = place
        per_day[day] += count
        report.hour_of_week[weekday][hour] += count
        key = outcome or "in_progress"
        report.by_outcome[key] = report.by_outcome.get(key, 0) + count
        report.total += count
    report.per_day = dict(sorted(per_day.items()))
    report.answered = sum(report.by_outcome.get(o, 0) for o in ANSWERED)
    report.voicemail = sum(report.by_outcome.get(o, 0) for o in VOICEMAIL)
    report.abandoned = report.by_outcome.get("abandoned", 0)


def _percentiles(
    conn: Connection,
    dialect: str,
    expr: ColumnElement[Any],
    where: list[Any],
    quantiles: tuple[float, ...],
) -> tuple[float | None, ...]:
    if dialect == "postgresql":
        cols = [func.percentile_cont(q).within_group(expr) for q in quantiles]
        row = conn.execute(select(*cols).where(*where)).one()
        return tuple(None if v is None else float(v) for v in row)
    # SQLite has no percentile function: one indexed read of the values, sorted here
    # (a sorted read with OFFSET per quantile re-sorts every time: 3x slower).
    values = sorted(float(v) for v in conn.scalars(select(expr).where(*where)))
    if not values:
        return tuple(None for _ in quantiles)
    result: list[float | None] = []
    for q in quantiles:
        pos = (len(values) - 1) * q
        low = math.floor(pos)
        lower = values[low]
        upper = values[min(low + 1, len(values) - 1)]
        # julianday() arithmetic carries ~10 us of float noise: keep milliseconds.
        result.append(round(lower + (upper - lower) * (pos - low), 3))
    return tuple(result)


def _hops(conn: Connection, report: Report, where: list[Any]) -> None:
    stmt = (
        select(hops_table.c.seq, hops_table.c.person_id, hops_table.c.outcome, func.count())
        .join(calls_table, calls_table.c.id == hops_table.c.call_id)
        .where(*where)
        .group_by(hops_table.c.seq, hops_table.c.person_id, hops_table.c.outcome)
    )
    people: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for seq, person, outcome, count in conn.execute(stmt):
        key = outcome or "in_progress"
        per_hop = report.per_hop.setdefault(int(seq), {})
        per_hop[key] = per_hop.get(key, 0) + count
        if key == "skipped":  # on another on-call call, passed over: never rung
            continue
        stats = people[person]
        stats["rung"] += count
        stats[PERSON_CLASSES.get(key, "other")] += count
    report.per_person = {p: PersonStats(**counts) for p, counts in people.items()}
