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

import html
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, and_, or_, select

from astreinte_ari.adapters.store.models import hops_table
from astreinte_ari.config.reporting import CompensationConfig
from astreinte_ari.public_holidays import country_holidays
from astreinte_ari.reports.csv_safe import SafeWriter

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
    warnings: list[str] = field(default_factory=list)

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


def to_csv(statements: list[Statement], zone: ZoneInfo) -> str:
    out = io.StringIO()
    writer = SafeWriter(out)  # formula-injection guard: csv_safe.py
    writer.writerow(["person", "month", "item", "start", "end", "hours", "detail"])
    for st in statements:
        for p in st.periods:
            hours = (p.end - p.start).total_seconds() / 3600
            writer.writerow([st.person, st.month, "period", p.start.astimezone(zone).isoformat(),
                             p.end.astimezone(zone).isoformat(), f"{hours:.2f}",
                             f"{p.team}/{p.rota} ({p.source})"])  # fmt: skip
        for i in st.interventions:
            hours = (i.end - i.start).total_seconds() / 3600
            writer.writerow([st.person, st.month, "intervention", i.start.astimezone(zone)
                             .isoformat(), i.end.astimezone(zone).isoformat(), f"{hours:.4f}",
                             f"call {i.call_id}"])  # fmt: skip
        for kind, hours in st.on_call_hours.items():
            writer.writerow([st.person, st.month, f"on_call_hours_{kind}", "", "", hours, ""])
        for name, amount in st.amounts.items():
            writer.writerow([st.person, st.month, f"amount_{name}", "", "", "",
                             f"{amount:.2f} {st.currency}"])  # fmt: skip
        writer.writerow([st.person, st.month, "total", "", "", "", f"{st.total:.2f} {st.currency}"])
        for warning in st.warnings:
            writer.writerow([st.person, st.month, "warning", "", "", "", warning])
    return out.getvalue()


def to_html(statements: list[Statement], zone: ZoneInfo) -> str:
    """Print-ready HTML (one page per person: page-break CSS); print to PDF from a browser."""
    parts = []
    for st in statements:
        rows = "".join(
            f"<tr><td>{p.start.astimezone(zone):%Y-%m-%d %H:%M}</td>"
            f"<td>{p.end.astimezone(zone):%Y-%m-%d %H:%M}</td>"
            f"<td>{html.escape(p.team)}/{html.escape(p.rota)} ({p.source})</td></tr>"
            for p in st.periods
        )
        calls = "".join(
            f"<tr><td>{i.start.astimezone(zone):%Y-%m-%d %H:%M}</td>"
            f"<td>{(i.end - i.start).total_seconds() / 60:.1f} min</td>"
            f"<td>{html.escape(i.call_id)}</td></tr>"
            for i in st.interventions
        )
        amounts = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.2f} {html.escape(st.currency)}</td></tr>"
            for k, v in st.amounts.items()
        )
        warnings = "".join(f"<li>{html.escape(w)}</li>" for w in st.warnings) or "<li>none</li>"
        parts.append(
            f'<section style="page-break-after:always"><h1>On-call statement '
            f"{html.escape(st.month)}: {html.escape(st.person)}</h1>"
            f"<h2>Periods on call ({len(st.periods)})</h2><table><tr><th>from</th><th>to</th>"
            f"<th>rota</th></tr>{rows}</table>"
            f"<h2>Interventions ({len(st.interventions)}, {st.intervention_hours:.2f} h)</h2>"
            f"<table><tr><th>accepted</th><th>duration</th><th>call</th></tr>{calls}</table>"
            f"<h2>Compensation</h2><table>{amounts}<tr><th>total</th>"
            f"<th>{st.total:.2f} {html.escape(st.currency)}</th></tr></table>"
            f"<h2>Rest-rule warnings</h2><ul>{warnings}</ul></section>"
        )
    style = "body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:3px 8px}"
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>On-call statements</title>'
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
