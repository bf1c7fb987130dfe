"""Monthly on-call statement per person: periods on call, interventions, compensation.

Periods come from the resolved rota (`schedule.rota.shifts`, overrides
included); interventions are accepted hops from the audit store (accept ->
hang-up) and answered call-backs (answer -> hang-up). The arithmetic
(`compensate`) is pure and table-tested.

Compensation (config `compensation:`):
  per_period x number of periods
+ on-call hours x on_call_hourly.{weekday|weekend|holiday} (by local day)
+ intervention hours x intervention_hourly x (1 + largest applicable majoration
  among night / weekend / holiday, judged at the intervention's start).
Rest rule: a warning when an intervention starts less than rest_hours after
the end of the previous one (daily rest interrupted).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, and_, or_, select

from astreinte_ari.adapters.store.models import hops_table
from astreinte_ari.config.reporting import CompensationConfig
from astreinte_ari.public_holidays import country_holidays
from astreinte_ari.reports.csv_safe import SafeWriter
from astreinte_ari.reports.humanize import Lang
from astreinte_ari.reports.labels import label

# The statement CSV's machine columns (stable: importers read them) and, after them,
# the columns for people.
CSV_COLUMNS = ("person", "month", "item", "start", "end", "hours", "detail")
CSV_HUMAN_COLUMNS = ("label", "name")

# Label of the hop a voice alert writes when the agent presses 2 to call the caller
# back (adapters/notify/voice.py): paid as an intervention from the caller's answer.
CALL_BACK_LABEL = "call-back"


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime  # UTC
    end: datetime
    team: str
    rota: str
    source: str  # rotation | override


@dataclass(frozen=True, slots=True)
class Intervention:
    call_id: str
    start: datetime  # UTC: when the agent accepted (a call-back: when the caller answered)
    end: datetime


@dataclass(frozen=True, slots=True)
class RestBreak:
    """An intervention that started less than the rest rule after the previous one."""

    at: datetime  # UTC: the intervention's start
    gap_hours: float
    rule_hours: float


@dataclass(slots=True)
class Statement:
    person: str
    month: str
    currency: str
    periods: list[Period] = field(default_factory=list)
    interventions: list[Intervention] = field(default_factory=list)
    on_call_hours: dict[str, float] = field(default_factory=dict)  # weekday/weekend/holiday
    intervention_hours: float = 0.0
    amounts: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # English, as in the CSV
    rest_breaks: list[RestBreak] = field(default_factory=list)  # the same, for documents

    @property
    def total(self) -> float:
        return round(sum(self.amounts.values()), 2)


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """'2026-12' -> [first local midnight, next month's first local midnight) in UTC."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _holiday_days(config: CompensationConfig, years: Iterable[int]) -> set[date]:
    if config.holidays is None:
        return set()
    found = country_holidays(
        config.holidays, subdiv=config.holiday_subdiv, years=sorted(set(years))
    )
    return set(found)


def day_kind(day: date, holiday_days: set[date]) -> str:
    if day in holiday_days:
        return "holiday"
    return "weekend" if day.weekday() >= 5 else "weekday"


def hours_by_day_kind(
    start: datetime, end: datetime, zone: ZoneInfo, holiday_days: set[date]
) -> dict[str, float]:
    """Split [start, end) at local midnights; hours per kind of local day (DST-exact)."""
    result = {"weekday": 0.0, "weekend": 0.0, "holiday": 0.0}
    cursor = start
    while cursor < end:
        local = cursor.astimezone(zone)
        next_midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=zone)
        piece_end = min(end, next_midnight.astimezone(UTC))
        result[day_kind(local.date(), holiday_days)] += (piece_end - cursor).total_seconds() / 3600
        cursor = piece_end
    return result


def majoration(
    at: datetime, zone: ZoneInfo, config: CompensationConfig, holiday_days: set[date]
) -> float:
    local = at.astimezone(zone)
    applicable = [0.0]
    start, end = config.night_minutes()
    minute = local.hour * 60 + local.minute
    in_night = start <= minute < end if start < end else (minute >= start or minute < end)
    if in_night:
        applicable.append(config.majorations.night)
    kind = day_kind(local.date(), holiday_days)
    if kind == "weekend":
        applicable.append(config.majorations.weekend)
    if kind == "holiday":
        applicable.append(config.majorations.holiday)
    return max(applicable)


def compensate(statement: Statement, zone: ZoneInfo, config: CompensationConfig) -> None:
    """Fill hours, amounts and warnings of a statement whose periods/interventions are set."""
    years = {p.start.astimezone(zone).year for p in statement.periods}
    years |= {i.start.astimezone(zone).year for i in statement.interventions}
    holiday_days = _holiday_days(config, years or {2000})
    hours = {"weekday": 0.0, "weekend": 0.0, "holiday": 0.0}
    for period in statement.periods:
        for kind, value in hours_by_day_kind(period.start, period.end, zone, holiday_days).items():
            hours[kind] += value
    statement.on_call_hours = {k: round(v, 4) for k, v in hours.items()}
    rates = config.on_call_hourly
    pay = 0.0
    total_hours = 0.0
    previous_end: datetime | None = None
    for item in sorted(statement.interventions, key=lambda i: i.start):
        length = max(0.0, (item.end - item.start).total_seconds() / 3600)
        total_hours += length
        factor = 1 + majoration(item.start, zone, config, holiday_days)
        pay += length * config.intervention_hourly * factor
        if previous_end is not None and item.start - previous_end < timedelta(
            hours=config.rest_hours
        ):
            gap = (item.start - previous_end).total_seconds() / 3600
            local = item.start.astimezone(zone)
            statement.rest_breaks.append(RestBreak(item.start, gap, config.rest_hours))
            statement.warnings.append(
                f"rest interrupted: intervention at {local:%Y-%m-%d %H:%M} only {gap:.1f} h "
                f"after the previous one (rule: {config.rest_hours:g} h)"
            )
        previous_end = max(previous_end or item.end, item.end)
    statement.intervention_hours = round(total_hours, 4)
    statement.amounts = {
        "periods": round(config.per_period * len(statement.periods), 2),
        "on_call_weekday": round(hours["weekday"] * rates.weekday, 2),
        "on_call_weekend": round(hours["weekend"] * rates.weekend, 2),
        "on_call_holiday": round(hours["holiday"] * rates.holiday, 2),
        "interventions": round(pay, 2),
    }


def _intervention_hops(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Accepted hops accepted in [start, end), and call-backs answered in it."""
    hop = hops_table.c
    return or_(
        and_(hop.outcome == "accepted", hop.accepted_at >= start, hop.accepted_at < end),
        and_(hop.label == CALL_BACK_LABEL, hop.outcome == "connected",
             hop.answered_at >= start, hop.answered_at < end),
    )  # fmt: skip


def interventions(
    engine: Engine, person: str, start: datetime, end: datetime
) -> list[Intervention]:
    """Interventions of `person` starting in [start, end): accept (or the called-back
    caller answering) -> hang-up."""
    stmt = select(
        hops_table.c.call_id,
        hops_table.c.accepted_at,
        hops_table.c.answered_at,
        hops_table.c.ended_at,
    ).where(hops_table.c.person_id == person, _intervention_hops(start, end))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    found = [Intervention(c, a or b, e or a or b) for c, a, b, e in rows]
    return sorted(found, key=lambda item: item.start)


def people_with_interventions(engine: Engine, start: datetime, end: datetime) -> set[str]:
    """Whoever intervened in [start, end), on a rota or not (e.g. a supervisor hop)."""
    stmt = select(hops_table.c.person_id).where(_intervention_hops(start, end)).distinct()
    with engine.connect() as conn:
        return set(conn.scalars(stmt))


def _csv_items(st: Statement, zone: ZoneInfo) -> Iterable[tuple[str, str, str, object, str]]:
    """(item, start, end, hours, detail) of each row of one statement."""
    for p in st.periods:
        hours = (p.end - p.start).total_seconds() / 3600
        yield ("period", p.start.astimezone(zone).isoformat(), p.end.astimezone(zone).isoformat(),
               f"{hours:.2f}", f"{p.team}/{p.rota} ({p.source})")  # fmt: skip
    for i in st.interventions:
        hours = (i.end - i.start).total_seconds() / 3600
        yield ("intervention", i.start.astimezone(zone).isoformat(),
               i.end.astimezone(zone).isoformat(), f"{hours:.4f}", f"call {i.call_id}")  # fmt: skip
    for kind, on_call in st.on_call_hours.items():
        yield f"on_call_hours_{kind}", "", "", on_call, ""
    for name, amount in st.amounts.items():
        yield f"amount_{name}", "", "", "", f"{amount:.2f} {st.currency}"
    yield "total", "", "", "", f"{st.total:.2f} {st.currency}"
    for warning in st.warnings:
        yield "warning", "", "", "", warning


def to_csv(
    statements: list[Statement],
    zone: ZoneInfo,
    lang: Lang = "fr",
    names: Mapping[str, str] | None = None,
) -> str:
    """One row per item. The first seven columns are the stable machine ones (raw
    `item` keys, ISO dates, decimal hours); `label` (the item in `lang`) and `name`
    (the person's) come last, so that importers reading by position still work."""
    names = names or {}
    out = io.StringIO()
    writer = SafeWriter(out)  # formula-injection guard: csv_safe.py
    writer.writerow([*CSV_COLUMNS, *CSV_HUMAN_COLUMNS])
    for st in statements:
        name = names.get(st.person, st.person)
        for item, start, end, hours, detail in _csv_items(st, zone):
            writer.writerow([st.person, st.month, item, start, end, hours, detail,
                             label(item, lang), name])  # fmt: skip
    return out.getvalue()
