"""Approved changes as YAML `overrides:` entries, ready to paste into the team's file
(the YAML stays the readable reference; `astreinte rota export-overrides`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import yaml

from astreinte_ari.config.rotas import Override
from astreinte_ari.schedule.layers import local_to_utc


def _when(at: datetime, zone: ZoneInfo) -> str:
    """Local wall time as the team's file writes it; with its offset where the wall
    time alone would name another instant (the hour repeated when clocks go back)."""
    local = at.astimezone(zone).replace(tzinfo=None)
    if local_to_utc(local, zone) == at.astimezone(UTC):
        return local.strftime("%Y-%m-%d %H:%M")
    return at.astimezone(zone).isoformat(sep=" ", timespec="minutes")


def export_overrides_yaml(overrides: Sequence[Override], zone: ZoneInfo) -> str:
    """`overrides:` and one entry per override, times local to `zone`."""
    entries = []
    for override in overrides:
        entry: dict[str, str] = {
            "rota": override.rota,
            "person": override.person,
            "from": _when(override.from_, zone),
            "to": _when(override.to, zone),
        }
        if override.reason:
            entry["reason"] = override.reason
        if override.requested_by:
            entry["requested_by"] = override.requested_by
        entries.append(entry)
    text = yaml.safe_dump(
        {"overrides": entries}, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return text.rstrip("\n")
