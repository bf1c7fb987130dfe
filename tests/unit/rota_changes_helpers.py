"""What the self-service change tests share: a configuration with two rotas and two
managers, its fixtures, the clock, and builders of cover and swap requests.
Used by test_rota_changes_*.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from astreinte_ari.config.model import AppConfig, TeamConfig
from astreinte_ari.schedule.changes import ChangeRequest, new_request
from astreinte_ari.schedule.validate import load_checked_config

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
# week: b holds the week of 2026-03-02 (mon 08:00), c the week of 03-09.
# nights (mon-fri 18:00-08:00): a the week of 03-02, b the week of 03-09.
CONFIG = """timezone: Europe/Paris
ari: {url: "http://127.0.0.1:8088", username: astreinte}
trunk: {dial: "PJSIP/{number}", caller_id: "+33180000000", allowed_prefixes: ["+336"]}
lines:
  "+33180000000":
    name: Maintenance
    team: t
    after_hours: {hops: [{rota: week, timeout: 20}]}
    night: {hops: [{rota: week, timeout: 20}]}
    weekend: {hops: [{rota: week, timeout: 20}]}
teams:
  t:
    people:
      a: {name: A, mobile: "+33612345671"}
      b: {name: B, mobile: "+33612345672"}
      c: {name: C, mobile: "+33612345673"}
      m: {name: M, mobile: "+33612345674"}
      n: {name: N, mobile: "+33612345675"}
    managers: [m, n]
    rotas:
      nights: {every: week, handoff: "mon 08:00", start: 2026-01-05, people: [a, b],
               only: weekday-nights}
      week: {every: week, handoff: "mon 08:00", start: 2026-01-05, people: [b, c]}
"""


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def load(tmp_path: Path, team_extra: str = "") -> AppConfig:
    path = tmp_path / "astreinte.yaml"
    path.write_text(CONFIG + team_extra, encoding="utf-8")
    return load_checked_config(path)


# Test files import config_fixture and team_fixture: their config and team parameters
# shadow no import (F811).
@pytest.fixture(name="config")
def config_fixture(tmp_path: Path) -> AppConfig:
    return load(tmp_path)


@pytest.fixture(name="team")
def team_fixture(config: AppConfig) -> TeamConfig:
    return config.teams["t"]


def ask(team: TeamConfig, **kw: object) -> ChangeRequest:
    args: dict[str, object] = {"request_id": "r1", "rota": "week", "now": NOW}
    args.update(kw)
    return new_request("t", team, **args)  # type: ignore[arg-type]


def cover(team: TeamConfig, actor: str = "a") -> ChangeRequest:
    """a takes b's Saturday daytime."""
    return ask(
        team, actor=actor, kind="cover",
        start=local("2026-03-07 10:00"), end=local("2026-03-07 16:00"), reason="I'll take it",
    )  # fmt: skip


def swap(team: TeamConfig, two_way: bool = True) -> ChangeRequest:
    """b gives Wednesday to c and takes c's next Tuesday daytime."""
    extra = {}
    if two_way:
        extra = {"swap_start": local("2026-03-10 08:00"), "swap_end": local("2026-03-10 18:00")}
    return ask(
        team, actor="b", kind="swap", counterpart="c",
        start=local("2026-03-04 08:00"), end=local("2026-03-05 08:00"), **extra,
    )  # fmt: skip


LATER = NOW + timedelta(hours=1)


STRICT = """    labour:
      double_booking: error
      notice: {days: 15, level: error}
"""
