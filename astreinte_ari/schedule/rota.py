"""Who is on call: the public, pure interface of the schedule engine.

Callers use the module-level `who_is_on_call` and `shifts` (or a `RotaResolver`);
the engine itself (layers, restrictions, overrides, swaps, holiday rules, DST)
lives in engine.py and layers.py. Compiled rotas are cached per TeamConfig
object: configurations are immutable, and a reload builds new objects.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from astreinte_ari.config.model import TeamConfig
from astreinte_ari.schedule.engine import Assignment, CompiledRota, RotaError, ShiftSource

__all__ = [
    "CompiledRota",
    "EngineRotaResolver",
    "RotaError",
    "RotaResolver",
    "Shift",
    "ShiftSource",
    "compiled_rota",
    "shifts",
    "who_is_on_call",
]

_CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class Shift:
    person_id: str
    # Aware UTC: subtracting or comparing same-zone local datetimes ignores DST
    # offsets in Python, so consumers get UTC and convert only for display.
    start: datetime
    end: datetime
    source: ShiftSource
    rota: str = ""
    reason: str | None = None  # from the override, swap or holiday rule, if any
    requested_by: str | None = None
    layer: str = ""  # name of the rotation layer ("" for overrides and holiday rules)


class RotaResolver(Protocol):
    def who_is_on_call(self, team: TeamConfig, rota_name: str, at: datetime) -> str | None: ...

    def shifts(
        self, team: TeamConfig, rota_name: str, start: datetime, end: datetime
    ) -> list[Shift]: ...


def _utc(at: datetime, what: str = "time") -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise RotaError(f"{what} must be timezone-aware, got {at.isoformat()}")
    return at.astimezone(UTC)


# id(team) -> (team, {rota name: compiled}); the team is kept so that its id stays unique.
_compiled: OrderedDict[int, tuple[TeamConfig, dict[str, CompiledRota]]] = OrderedDict()
_lock = threading.Lock()


def compiled_rota(team: TeamConfig, rota_name: str) -> CompiledRota:
    """The compiled form of one rota of this (immutable) team, built once."""
    key = id(team)
    # The config watcher validates (and so compiles) in a worker thread.
    with _lock:
        entry = _compiled.get(key)
        if entry is None or entry[0] is not team:
            entry = (team, {})
            _compiled[key] = entry
            if len(_compiled) > _CACHE_SIZE:
                _compiled.popitem(last=False)
        else:
            _compiled.move_to_end(key)
        rota = entry[1].get(rota_name)
        if rota is None:
            rota = entry[1][rota_name] = CompiledRota(team, rota_name)
        return rota


def _shift_of(rota: CompiledRota, a: Assignment, start: datetime, end: datetime) -> Shift:
    team = rota.team
    reason = requested_by = None
    layer = ""
    if a.source == "override":
        entry = team.overrides[a.entry]
        reason, requested_by = entry.reason, entry.requested_by
    elif a.source in ("holiday", "closure"):
        rule = team.holiday_rules[a.entry]
        reason, requested_by = rule.reason, rule.requested_by
    else:
        layer = rota.layers[a.layer].name
        if a.source == "swap":
            swap = team.swaps[a.entry]
            reason, requested_by = swap.reason, swap.requested_by
    return Shift(a.person_id, start, end, a.source, rota.name, reason, requested_by, layer)


class EngineRotaResolver:
    """Layers with restrictions, swaps, overrides and holiday rules (engine.py)."""

    def who_is_on_call(self, team: TeamConfig, rota_name: str, at: datetime) -> str | None:
        found = compiled_rota(team, rota_name).at(_utc(at))
        return None if found is None else found.person_id

    def shifts(
        self, team: TeamConfig, rota_name: str, start: datetime, end: datetime
    ) -> list[Shift]:
        """Who holds the rota over [start, end), cut at handoffs, window edges,
        override and holiday edges; adjacent pieces with the same holder for the
        same reason are merged. Times nobody holds the rota are left out."""
        rota = compiled_rota(team, rota_name)
        start_u, end_u = _utc(start, "start"), _utc(end, "end")
        if end_u <= start_u:
            return []
        edges = [start_u, *rota.cuts_between(start_u, end_u), end_u]
        result: list[Shift] = []
        last_key: tuple[object, ...] | None = None
        for piece_start, piece_end in itertools.pairwise(edges):
            found = rota.at(piece_start)
            if found is None:
                last_key = None
                continue
            key = (found.person_id, found.source, found.layer, found.entry)
            if key == last_key:
                prev = result[-1]
                result[-1] = Shift(
                    prev.person_id,
                    prev.start,
                    piece_end,
                    prev.source,
                    prev.rota,
                    prev.reason,
                    prev.requested_by,
                    prev.layer,
                )
            else:
                result.append(_shift_of(rota, found, piece_start, piece_end))
            last_key = key
        return result


default_resolver: RotaResolver = EngineRotaResolver()


def who_is_on_call(team: TeamConfig, rota_name: str, at: datetime) -> str | None:
    """Person id holding `rota_name` at the aware instant `at`; None if the rota
    has nobody then (a restricted layer outside its windows)."""
    return default_resolver.who_is_on_call(team, rota_name, at)


def shifts(team: TeamConfig, rota_name: str, start: datetime, end: datetime) -> list[Shift]:
    """Shifts of `rota_name` over [start, end), with UTC start/end."""
    return default_resolver.shifts(team, rota_name, start, end)
