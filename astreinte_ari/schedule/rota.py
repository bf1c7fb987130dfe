"""Who is on call: a minimal rota resolver (rotations + overrides, DST-correct).

Kept behind the small `RotaResolver` interface: a later, fuller engine (holiday
swaps, partial-day shifts...) replaces `SimpleRotaResolver` without touching
callers, which use the module-level `who_is_on_call` and `shifts`.

Handoffs are wall-clock times in the team's zone: "fri 18:00" stays 18:00 local
on both sides of a DST change, so a shift is 167 or 169 hours long that week.
All instant comparisons are done in UTC (same-zone aware datetimes compare
by wall time in Python, which is wrong around the fall-back hour).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from astreinte_ari.config.model import Override, Rotation, TeamConfig

ShiftSource = Literal["rotation", "override"]


class RotaError(ValueError):
    """Unknown rota, missing time zone, or a naive datetime."""


@dataclass(frozen=True, slots=True)
class Shift:
    person_id: str
    # Aware UTC: subtracting or comparing same-zone local datetimes ignores DST
    # offsets in Python, so consumers get UTC and convert only for display.
    start: datetime
    end: datetime
    source: ShiftSource
    rota: str = ""
    reason: str | None = None  # from the override, if any


class RotaResolver(Protocol):
    def who_is_on_call(self, team: TeamConfig, rota_name: str, at: datetime) -> str: ...

    def shifts(
        self, team: TeamConfig, rota_name: str, start: datetime, end: datetime
    ) -> list[Shift]: ...


def _zone(team: TeamConfig) -> ZoneInfo:
    if not team.timezone:
        raise RotaError("the team has no time zone (AppConfig gives it the global one)")
    return ZoneInfo(team.timezone)


def _utc(at: datetime, what: str = "time") -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise RotaError(f"{what} must be timezone-aware, got {at.isoformat()}")
    return at.astimezone(UTC)


def _local_to_utc(value: datetime, zone: tzinfo) -> datetime:
    """Naive values are local wall time (a time skipped by DST maps to the instant
    it would have been, i.e. one hour later on the clock)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


class SimpleRotaResolver:
    """Fixed-length rotations with a wall-clock handoff, plus dated overrides."""

    def _rotation(self, team: TeamConfig, rota_name: str) -> Rotation:
        try:
            return team.rotas[rota_name]
        except KeyError:
            known = ", ".join(team.rotas) or "none"
            raise RotaError(f"unknown rota '{rota_name}' (team has: {known})") from None

    def _boundary(self, rot: Rotation, k: int, zone: tzinfo) -> datetime:
        """UTC instant of the k-th handoff (k=0: the rotation's start date)."""
        minute = rot.handoff_spec.minute
        day = rot.start + timedelta(days=k * rot.length_days)
        return _local_to_utc(datetime.combine(day, time(minute // 60, minute % 60)), zone)

    def _index(self, rot: Rotation, at_utc: datetime, zone: tzinfo) -> int:
        """Number of handoffs since start (negative before it: the cycle extends back)."""
        local_date = at_utc.astimezone(zone).date()
        k = (local_date - rot.start).days // rot.length_days
        if at_utc < self._boundary(rot, k, zone):
            k -= 1
        elif at_utc >= self._boundary(rot, k + 1, zone):
            k += 1
        return k

    def _overrides(
        self, team: TeamConfig, rota_name: str, zone: tzinfo
    ) -> list[tuple[datetime, datetime, Override]]:
        return [
            (_local_to_utc(o.from_, zone), _local_to_utc(o.to, zone), o)
            for o in team.overrides
            if o.rota == rota_name
        ]

    def _at(
        self,
        rot: Rotation,
        overrides: list[tuple[datetime, datetime, Override]],
        at_utc: datetime,
        zone: tzinfo,
    ) -> tuple[str, ShiftSource, str | None]:
        # The last matching override wins: ops append newer swaps at the end.
        for start, end, override in reversed(overrides):
            if start <= at_utc < end:
                return override.person, "override", override.reason
        k = self._index(rot, at_utc, zone)
        return rot.people[k % len(rot.people)], "rotation", None

    def who_is_on_call(self, team: TeamConfig, rota_name: str, at: datetime) -> str:
        zone = _zone(team)
        rot = self._rotation(team, rota_name)
        return self._at(rot, self._overrides(team, rota_name, zone), _utc(at), zone)[0]

    def shifts(
        self, team: TeamConfig, rota_name: str, start: datetime, end: datetime
    ) -> list[Shift]:
        """Who holds the rota over [start, end), cut at handoffs and override edges;
        adjacent pieces with the same person and source are merged."""
        zone = _zone(team)
        rot = self._rotation(team, rota_name)
        start_u, end_u = _utc(start, "start"), _utc(end, "end")
        if end_u <= start_u:
            return []
        overrides = self._overrides(team, rota_name, zone)
        cuts = {start_u, end_u}
        k = self._index(rot, start_u, zone) + 1
        while (boundary := self._boundary(rot, k, zone)) < end_u:
            cuts.add(boundary)
            k += 1
        for o_start, o_end, _ in overrides:
            cuts.update(c for c in (o_start, o_end) if start_u < c < end_u)
        ordered = sorted(cuts)

        result: list[Shift] = []
        for piece_start, piece_end in itertools.pairwise(ordered):
            person, source, reason = self._at(rot, overrides, piece_start, zone)
            last = result[-1] if result else None
            if last and (last.person_id, last.source, last.reason) == (person, source, reason):
                result[-1] = Shift(person, last.start, piece_end, source, rota_name, reason)
            else:
                result.append(Shift(person, piece_start, piece_end, source, rota_name, reason))
        return result


default_resolver: RotaResolver = SimpleRotaResolver()


def who_is_on_call(team: TeamConfig, rota_name: str, at: datetime) -> str:
    """Person id holding `rota_name` at the aware instant `at`."""
    return default_resolver.who_is_on_call(team, rota_name, at)


def shifts(team: TeamConfig, rota_name: str, start: datetime, end: datetime) -> list[Shift]:
    """Shifts of `rota_name` over [start, end), with UTC start/end."""
    return default_resolver.shifts(team, rota_name, start, end)
