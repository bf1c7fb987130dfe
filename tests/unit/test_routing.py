"""Calendar periods and call plans built from a real YAML file."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig, LineConfig
from astreinte_ari.routing.calendar import resolve_period
from astreinte_ari.routing.plan import AnnouncementMode, FinalAction, Period
from astreinte_ari.routing.router import build_plan

PARIS = ZoneInfo("Europe/Paris")
MAINT = "+33180000000"
ONCALL = "+33180000099"

CONFIG = textwrap.dedent(
    """\
    timezone: Europe/Paris
    ari: {url: http://127.0.0.1:8088, username: astreinte}
    trunk: {dial: "PJSIP/{number}@operator", caller_id: "+33180000000", allowed_prefixes: ["+336"]}
    defaults: {accept_timeout: 12}
    lines:
      "+33180000000":
        name: Maintenance
        team: maint
        language: en
        line_prompt: astreinte-line-maintenance
        accept_timeout: 8
        early_dial: true
        announcement_mode: until_accepted
        business_hours:
          mon-fri: "08:00-12:00,13:30-18:00"
          sat: "09:00-12:00"
          holidays: FR
          closures: [2026-12-31]
        in_business_hours: {forward: "+33699000000", timeout: 20}
        after_hours:
          hops:
            - {rota: primary, timeout: 25}
            - {rota: secondary, timeout: 20}
            - {person: sup, label: supervisor, timeout: 30}
          finally: voicemail
        holiday:
          announcement: astreinte-fermeture
          hops: [{person: sup, timeout: 15}]
          finally: hangup
      "+33180000099":
        name: Pure on-call
        team: maint
        after_hours:
          announcement: false
          hops: [{rota: primary, timeout: 10}, {person: sup, timeout: 10}]
    teams:
      maint:
        people:
          alice: {name: Alice, mobile: "+33610000001"}
          bob: {name: Bob, mobile: "+33610000002"}
          sup: {name: Sup, mobile: "+33620000001"}
        rotas:
          primary: {every: week, handoff: "mon 09:00", start: 2026-01-05, people: [alice, bob]}
          secondary: {every: week, handoff: "mon 09:00", start: 2026-01-05, people: [bob, sup]}
    """
)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    path = tmp_path_factory.mktemp("cfg") / "astreinte.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.mark.parametrize(
    ("at", "period"),
    [
        ("2026-05-04 10:00", Period.BUSINESS),  # Monday morning
        ("2026-05-04 07:59", Period.NIGHT),
        ("2026-05-04 08:00", Period.BUSINESS),
        ("2026-05-04 12:00", Period.AFTER_HOURS),  # lunch break
        ("2026-05-04 13:29", Period.AFTER_HOURS),
        ("2026-05-04 13:30", Period.BUSINESS),
        ("2026-05-04 17:59", Period.BUSINESS),
        ("2026-05-04 18:00", Period.AFTER_HOURS),  # evening before the night
        ("2026-05-04 20:00", Period.NIGHT),
        ("2026-05-05 03:00", Period.NIGHT),
        ("2026-05-09 10:00", Period.BUSINESS),  # Saturday morning
        ("2026-05-09 13:00", Period.WEEKEND),
        ("2026-05-09 23:00", Period.WEEKEND),  # weekend beats night
        ("2026-05-10 10:00", Period.WEEKEND),  # Sunday
        ("2026-12-25 10:00", Period.HOLIDAY),  # Christmas (a Friday)
        ("2026-07-14 10:00", Period.HOLIDAY),  # Bastille Day (a Tuesday)
        ("2026-07-14 23:30", Period.HOLIDAY),
        ("2026-12-31 10:00", Period.HOLIDAY),  # company closure
        ("2026-12-30 10:00", Period.BUSINESS),
    ],
)
def test_resolve_period(config: AppConfig, at: str, period: Period) -> None:
    line = config.lines[MAINT]
    assert resolve_period(line, local(at), "Europe/Paris") is period
    # Same instant given in UTC: the local calendar still decides.
    assert resolve_period(line, local(at).astimezone(UTC), "Europe/Paris") is period


def test_no_business_hours_is_always_after_hours(config: AppConfig) -> None:
    line: LineConfig = config.lines[ONCALL]
    for at in ("2026-05-04 10:00", "2026-12-25 10:00", "2026-05-09 23:00"):
        assert resolve_period(line, local(at), "Europe/Paris") is Period.AFTER_HOURS


def test_unknown_did(config: AppConfig) -> None:
    assert build_plan(config, "+33100000000", local("2026-05-04 10:00")) is None


def test_business_forward(config: AppConfig) -> None:
    plan = build_plan(config, MAINT, local("2026-05-04 10:00"))
    assert plan is not None
    assert plan.period is Period.BUSINESS
    assert plan.announcement is None
    assert [(h.label, h.number, h.ring_timeout_s, h.require_accept) for h in plan.hops] == [
        ("business-forward", "+33699000000", 20, False)
    ]
    assert plan.hops[0].dial_string == "PJSIP/+33699000000@operator"
    assert plan.final is FinalAction.VOICEMAIL


@pytest.mark.parametrize(
    ("at", "period", "announcement", "cascade"),
    [
        # Week of 2026-05-04 (17 weeks after start): primary bob, secondary sup.
        (
            "2026-05-04 21:00",
            Period.NIGHT,
            "astreinte-night",
            [("primary", "bob", 25), ("secondary", "sup", 20)],
        ),  # sup twice in a row: collapsed
        (
            "2026-05-04 12:30",
            Period.AFTER_HOURS,
            "astreinte-after-hours",
            [("primary", "bob", 25), ("secondary", "sup", 20)],
        ),
        (
            "2026-05-09 15:00",
            Period.WEEKEND,
            "astreinte-weekend",
            [("primary", "bob", 25), ("secondary", "sup", 20)],
        ),
        # Monday 2026-05-11 09:00 handoff: primary alice, secondary bob, then sup.
        ("2026-05-11 08:59", Period.BUSINESS, None, [("business-forward", "business-forward", 20)]),
        (
            "2026-05-11 21:00",
            Period.NIGHT,
            "astreinte-night",
            [("primary", "alice", 25), ("secondary", "bob", 20), ("supervisor", "sup", 30)],
        ),
        # Holiday route of the line: own announcement, own hops and final action.
        ("2026-07-14 10:00", Period.HOLIDAY, "astreinte-fermeture", [("sup", "sup", 15)]),
    ],
)
def test_cascade(
    config: AppConfig,
    at: str,
    period: Period,
    announcement: str | None,
    cascade: list[tuple[str, str, int]],
) -> None:
    plan = build_plan(config, MAINT, local(at))
    assert plan is not None
    assert plan.period is period
    assert plan.announcement == announcement
    assert [(h.label, h.person_id, h.ring_timeout_s) for h in plan.hops] == cascade
    for hop in plan.hops:
        assert hop.dial_string == f"PJSIP/{hop.number}@operator"
    assert plan.language == "en" and plan.line_prompt == "astreinte-line-maintenance"
    assert plan.agent_caller_id == "+33180000000"
    assert plan.accept_timeout_s == 8  # line override beats defaults
    assert plan.early_dial and plan.announcement_mode is AnnouncementMode.UNTIL_ACCEPTED
    assert plan.voicemail.max_duration_s == 180
    assert plan.final is (FinalAction.HANGUP if period is Period.HOLIDAY else FinalAction.VOICEMAIL)


def test_defaults_and_no_announcement(config: AppConfig) -> None:
    plan = build_plan(config, ONCALL, local("2026-05-04 10:00"))
    assert plan is not None
    assert plan.announcement is None  # `announcement: false`
    assert plan.language == "fr" and plan.line_prompt is None
    assert plan.accept_timeout_s == 12
    assert [h.person_id for h in plan.hops] == ["bob", "sup"]
    # Early dial is opt-in per line; the caller hears the whole announcement by default.
    assert not plan.early_dial and plan.announcement_mode is AnnouncementMode.FULL


def test_disallowed_number_never_in_plan(config: AppConfig) -> None:
    # model_copy skips validation: simulate a config that bypassed the loader.
    team = config.teams["maint"]
    bad_people = {**team.people, "bob": team.people["bob"].model_copy(update={"mobile": "+4477"})}
    bad = config.model_copy(
        update={"teams": {"maint": team.model_copy(update={"people": bad_people})}}
    )
    plan = build_plan(bad, MAINT, local("2026-05-04 21:00"))
    assert plan is not None
    assert [h.person_id for h in plan.hops] == ["sup"]


@settings(max_examples=200, deadline=None)
@given(minutes=st.integers(min_value=0, max_value=2 * 366 * 24 * 60))
def test_every_planned_number_is_allowed(config: AppConfig, minutes: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    for did in (MAINT, ONCALL):
        plan = build_plan(config, did, now)
        assert plan is not None
        for hop in plan.hops:
            assert config.trunk.is_allowed(hop.number)
            assert hop.dial_string == config.trunk.dial_string(hop.number)
            assert 5 <= hop.ring_timeout_s <= 30
        pairs = list(zip(plan.hops, plan.hops[1:], strict=False))
        assert all(a.person_id != b.person_id for a, b in pairs)


@pytest.mark.parametrize(
    ("business_hours", "day", "period"),
    [
        ({"mon-fri": "08:00-18:00"}, "2026-12-25 10:00", Period.HOLIDAY),  # France by default
        ({"mon-fri": "08:00-18:00"}, "2026-04-03 10:00", Period.BUSINESS),  # Good Friday: no
        (
            {"mon-fri": "08:00-18:00", "holiday_subdiv": "alsace-moselle"},
            "2026-04-03 10:00",
            Period.HOLIDAY,  # Good Friday is a public holiday in Alsace-Moselle
        ),
        ({"mon-fri": "08:00-18:00", "holidays": None}, "2026-12-25 10:00", Period.BUSINESS),
    ],
    ids=["fr-default", "fr-good-friday", "alsace-moselle", "holidays-off"],
)
def test_public_holidays_france_by_default(
    business_hours: dict[str, object], day: str, period: Period
) -> None:
    line = LineConfig.model_validate(
        {
            "name": "L",
            "team": "t",
            "business_hours": business_hours,
            "after_hours": {"hops": [{"person": "p", "timeout": 20}]},
        }
    )
    assert resolve_period(line, local(day), "Europe/Paris") is period
