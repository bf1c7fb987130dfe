"""Read side of the audit trail: what `astreinte calls ...` and reports show.

Results are frozen dataclasses (no ORM objects escape), with datetimes in UTC
and a `to_json_dict()` for machine-readable output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import Engine, Select, exists, func, or_, select

from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.adapters.store.sql_time import seconds_between


class AmbiguousCallIdError(LookupError):
    """A call id prefix matches several calls."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        self.prefix = prefix
        self.candidates = candidates
        shown = ", ".join(candidates)
        super().__init__(f"call id prefix {prefix!r} matches several calls: {shown}")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class CallSummary:
    id: str
    did: str
    line_name: str
    period: str
    caller_number: str
    caller_name: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    outcome_detail: str | None
    accepted_person_id: str | None
    hop_count: int
    talk_seconds: float | None
    voicemail_path: str | None

    @property
    def wait_seconds(self) -> float | None:
        """From the call's arrival until a person was connected."""
        return _seconds(self.started_at, self.answered_at)

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _json_value(self)
        data["wait_seconds"] = self.wait_seconds
        return data


@dataclass(frozen=True, slots=True)
class HopRecord:
    id: str
    seq: int
    label: str
    person_id: str
    person_name: str
    number: str
    started_at: datetime
    ringing_at: datetime | None
    answered_at: datetime | None
    accepted_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    cause_code: int | None
    cause_text: str | None
    dtmf: str | None
    target_kind: str | None = None  # "trunk" | "sip"; None on hops recorded before 0009
    target: str | None = None  # what Asterisk dialled, e.g. "PJSIP/desk-101"

    @property
    def target_text(self) -> str:
        """ "sip:desk-101 (sip: PJSIP/desk-101)", "+33612345678 (trunk: PJSIP/...)";
        the number alone when neither kind nor dial string was recorded."""
        dialled = self.target if self.target and self.target != self.number else None
        detail = ": ".join(part for part in (self.target_kind, dialled) if part)
        return f"{self.number} ({detail})" if detail else self.number

    def to_json_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = _json_value(self)
        return result


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    seq: int
    from_state: str
    to_state: str
    reason: str
    at: datetime

    def to_json_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = _json_value(self)
        return result


@dataclass(frozen=True, slots=True)
class CallDetail:
    id: str
    did: str
    line_name: str
    period: str
    caller_number: str
    caller_name: str
    channel_id: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    outcome_detail: str | None
    accepted_hop_id: str | None
    accepted_person_id: str | None
    talk_seconds: float | None
    voicemail_path: str | None
    voicemail_seconds: float | None
    hops: tuple[HopRecord, ...]
    transitions: tuple[TransitionRecord, ...]
    node: str | None = None  # the node whose Asterisk carried it (clusters); None before 0010
    recording_path: str | None = None  # the recorded conversation, if the line records (0011)
    recording_seconds: float | None = None

    @property
    def wait_seconds(self) -> float | None:
        return _seconds(self.started_at, self.answered_at)

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _json_value(self)
        data["wait_seconds"] = self.wait_seconds
        return data


_CALL_COLUMNS = [c.name for c in calls_table.columns]
_HOP_FIELDS = [f.name for f in dataclasses.fields(HopRecord)]
_TRANSITION_FIELDS = [f.name for f in dataclasses.fields(TransitionRecord)]
_SUMMARY_FIELDS = [f.name for f in dataclasses.fields(CallSummary) if f.name != "hop_count"]


class CallFilters(TypedDict, total=False):
    """The filters of list_calls and count_calls (see list_calls)."""

    since: datetime | None
    until: datetime | None
    did: str | None
    outcome: str | None
    period: str | None
    caller: str | None
    person: str | None
    min_wait: float | None


def _call_filters(engine: Engine, stmt: Select[Any], filters: CallFilters) -> Select[Any]:
    """`stmt` narrowed by the filters of list_calls (count_calls shares them, so the
    "showing N of M" notice counts exactly what the list pages through)."""
    since, until = filters.get("since"), filters.get("until")
    did, outcome, period = filters.get("did"), filters.get("outcome"), filters.get("period")
    caller, person, min_wait = filters.get("caller"), filters.get("person"), filters.get("min_wait")
    if since is not None:
        stmt = stmt.where(calls_table.c.started_at >= since)
    if until is not None:
        stmt = stmt.where(calls_table.c.started_at < until)
    if did is not None:
        stmt = stmt.where(calls_table.c.did == did)
    if outcome is not None:
        stmt = stmt.where(calls_table.c.outcome == outcome)
    if period is not None:
        stmt = stmt.where(calls_table.c.period == period)
    if caller:
        stmt = stmt.where(
            or_(
                calls_table.c.caller_number.contains(caller, autoescape=True),
                calls_table.c.caller_name.contains(caller, autoescape=True),
            )
        )
    if person is not None:
        stmt = stmt.where(
            exists().where(
                hops_table.c.call_id == calls_table.c.id, hops_table.c.person_id == person
            )
        )
    if min_wait is not None:
        reached = func.coalesce(calls_table.c.answered_at, calls_table.c.ended_at)
        wait = seconds_between(engine.dialect.name, calls_table.c.started_at, reached)
        stmt = stmt.where(wait >= min_wait)
    return stmt


def list_calls(
    engine: Engine,
    *,
    limit: int | None = 50,
    offset: int = 0,
    **filters: Unpack[CallFilters],
) -> list[CallSummary]:
    """Calls newest first; `since` inclusive, `until` exclusive (aware datetimes);
    limit None: all of them.

    caller: substring of the caller number or name (as stored); person: a
    person id rung by any hop of the call; min_wait: seconds from arrival to
    connection, or to the end for a call never connected.
    """
    hop_count = (
        select(func.count(hops_table.c.id))
        .where(hops_table.c.call_id == calls_table.c.id)
        .correlate(calls_table)
        .scalar_subquery()
    )
    stmt: Select[Any] = select(
        *(calls_table.c[name] for name in _SUMMARY_FIELDS), hop_count.label("hop_count")
    )
    stmt = _call_filters(engine, stmt, filters)
    stmt = stmt.order_by(calls_table.c.started_at.desc(), calls_table.c.id.desc()).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [CallSummary(**row) for row in rows]


def count_calls(engine: Engine, **filters: Unpack[CallFilters]) -> int:
    """How many calls list_calls would give without a limit (same filters)."""
    stmt = _call_filters(engine, select(func.count()).select_from(calls_table), filters)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def get_call(engine: Engine, call_id_or_unique_prefix: str) -> CallDetail | None:
    """One call with its hops and transitions, by full id or unique id prefix.

    Returns None when nothing matches; raises AmbiguousCallIdError when a prefix
    matches several calls.
    """
    key = call_id_or_unique_prefix.strip()
    if not key:
        return None
    with engine.connect() as conn:
        call = conn.execute(select(calls_table).where(calls_table.c.id == key)).mappings().first()
        if call is None:
            # The prefix is user input: autoescape keeps % and _ literal.
            matches = (
                conn.execute(
                    select(calls_table)
                    .where(calls_table.c.id.startswith(key, autoescape=True))
                    .order_by(calls_table.c.id)
                    .limit(10)
                )
                .mappings()
                .all()
            )
            if not matches:
                return None
            if len(matches) > 1:
                raise AmbiguousCallIdError(key, [m["id"] for m in matches])
            call = matches[0]
        call_id = call["id"]
        hops = conn.execute(
            select(*(hops_table.c[n] for n in _HOP_FIELDS))
            .where(hops_table.c.call_id == call_id)
            .order_by(hops_table.c.seq, hops_table.c.started_at)
        ).mappings()
        hop_records = tuple(HopRecord(**row) for row in hops)
        transitions = conn.execute(
            select(*(call_transitions_table.c[n] for n in _TRANSITION_FIELDS))
            .where(call_transitions_table.c.call_id == call_id)
            .order_by(call_transitions_table.c.seq)
        ).mappings()
        transition_records = tuple(TransitionRecord(**row) for row in transitions)
    return CallDetail(
        **{name: call[name] for name in _CALL_COLUMNS},
        hops=hop_records,
        transitions=transition_records,
    )
