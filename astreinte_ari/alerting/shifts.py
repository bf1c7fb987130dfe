"""Shift starts ("prise de poste"): plan an acknowledged alert before each handoff."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from astreinte_ari.alerting.engine import AlertEngine
from astreinte_ari.alerting.model import Alert
from astreinte_ari.alerting.ports import AlertRepository
from astreinte_ari.config.alerting import ShiftStartAlert
from astreinte_ari.config.model import AppConfig
from astreinte_ari.schedule.rota import Shift, shifts

log = logging.getLogger(__name__)
HORIZON = timedelta(days=2)  # shift alerts are planned this far ahead (re-planned hourly)
LOOKBACK = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class ShiftState:
    spec: ShiftStartAlert
    shift: Shift
    alert: Alert | None  # the shift_start alert, if planned
    cover: Alert | None  # the replacement's alert, if the deadline passed

    @property
    def status(self) -> str:
        if self.cover is not None:
            if self.cover.state == "acked":
                return f"replaced by {self.cover.chain[0]}"
            return f"not confirmed, replacement {self.cover.chain[0]} alerted ({self.cover.state})"
        if self.alert is None:
            return "not planned"
        if self.alert.state == "acked":
            return f"confirmed by {self.alert.acked_by} via {self.alert.ack_via}"
        return {"scheduled": "alert scheduled", "open": "waiting for confirmation"}.get(
            self.alert.state, self.alert.state
        )


async def plan_shift_alerts(config: AppConfig, engine: AlertEngine, now: datetime) -> int:
    """Create the shift_start alerts of handoffs within HORIZON; returns how many are new."""
    created = 0
    assert config.alerting is not None
    for spec in config.alerting.shift_start:
        team = config.teams.get(spec.team)
        if team is None:
            log.error("shift_start: unknown team %r", spec.team)
            continue
        for shift in shifts(team, spec.rota, now, now + HORIZON)[1:]:  # [0] is in progress
            existing = await asyncio.to_thread(
                engine.store.find_shift, "shift_start", spec.team, spec.rota, shift.start
            )
            if existing is not None:
                continue
            opened_at = max(now, shift.start - timedelta(seconds=spec.before))
            await engine.open_alert(
                kind="shift_start",
                policy=spec.policy,
                chain=(shift.person_id,),
                opened_at=opened_at,
                state="scheduled" if opened_at > now else "open",
                team=spec.team,
                rota=spec.rota,
                shift_start=shift.start,
                shift_end=shift.end,
                deadline_at=opened_at + timedelta(seconds=spec.ack_within),
                language=spec.language or _team_language(config, spec.team),
            )
            created += 1
    return created


def shift_states(config: AppConfig, store: AlertRepository, now: datetime) -> list[ShiftState]:
    """Current and next shift of every rota with shift-start alerts (for `astreinte shifts`)."""
    result: list[ShiftState] = []
    if config.alerting is None:
        return result
    for spec in config.alerting.shift_start:
        team = config.teams.get(spec.team)
        if team is None:
            continue
        # Look back far enough to show when the current shift really started.
        window = shifts(team, spec.rota, now - LOOKBACK, now + LOOKBACK)
        current = next((i for i, s in enumerate(window) if s.start <= now < s.end), 0)
        for shift in window[current : current + 2]:
            start = shift.start
            alert = store.find_shift("shift_start", spec.team, spec.rota, start)
            cover = store.find_shift("shift_cover", spec.team, spec.rota, start)
            result.append(ShiftState(spec, shift, alert, cover))
    return result


def _team_language(config: AppConfig, team: str) -> str:
    """The language of the team's first line (what its people hear on the line), else
    the configuration's `language`."""
    lines = (line.language for line in config.lines.values() if line.team == team)
    return next(lines, config.language)
