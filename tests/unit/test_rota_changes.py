"""Self-service changes (schedule/changes.py): each rule, each permission case, the
state machine, the labour checks and the overlay on the configuration."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from astreinte_ari.config.loader import ConfigError
from astreinte_ari.config.model import AppConfig, TeamConfig
from astreinte_ari.routing.router import build_plan
from astreinte_ari.schedule import changes
from astreinte_ari.schedule.changes import (
    ChangeNotAllowed,
    ChangeRefused,
    ChangeRequest,
    apply_changes,
    approved_overrides,
    check_labour,
    labour_findings,
    new_request,
)
from astreinte_ari.schedule.rota import who_is_on_call
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


@pytest.fixture
def config(tmp_path: Path) -> AppConfig:
    return load(tmp_path)


@pytest.fixture
def team(config: AppConfig) -> TeamConfig:
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


# -- building requests --------------------------------------------------------------


def test_cover_finds_the_holder_from_the_schedule(team: TeamConfig) -> None:
    request = cover(team)
    assert (request.kind, request.requester, request.counterpart) == ("cover", "a", "b")
    assert request.status == "requested" and request.start.tzinfo == UTC
    assert request.start == local("2026-03-07 10:00").astimezone(UTC)


def test_swap_sides_are_checked_against_the_schedule(team: TeamConfig) -> None:
    request = swap(team)
    assert (request.counterpart, request.swap_start) == ("c", local("2026-03-10 08:00"))
    one_way = swap(team, two_way=False)
    assert one_way.swap_start is None and one_way.swap_end is None


@pytest.mark.parametrize(
    ("kw", "rule", "words"),
    [
        ({"actor": "zed"}, "permission", "not a person of team t"),
        ({"kind": "trade"}, "invalid", "swap or cover"),
        ({"rota": "days"}, "invalid", "unknown rota 'days'"),
        ({"end": local("2026-03-07 10:00")}, "invalid", "end must be after"),
        ({"start": local("2026-01-01 10:00"), "end": local("2026-01-02 10:00")}, "invalid",
         "already over"),
        ({"start": datetime(2026, 3, 7, 10)}, "invalid", "time zone"),
        ({"counterpart": "zed"}, "invalid", "unknown person 'zed'"),
        ({"counterpart": "c"}, "not_holder", "c does not hold that slot (b does)"),
        ({"actor": "b"}, "not_holder", "b already holds"),
        ({"rota": "nights"}, "no_shift", "nobody is on call"),
        ({"reason": "x" * 501}, "invalid", "longer than 500"),
        ({"start": local("2026-03-08 10:00"), "end": local("2026-03-09 10:00")},
         "several_holders", "b, c hold"),
        ({"swap_start": local("2026-03-10 08:00"), "swap_end": local("2026-03-10 09:00")},
         "invalid", "a cover takes one slot"),
    ],
)  # fmt: skip
def test_cover_refusals_name_the_rule(
    team: TeamConfig, kw: dict[str, object], rule: str, words: str
) -> None:
    args: dict[str, object] = {
        "actor": "a", "kind": "cover",
        "start": local("2026-03-07 10:00"), "end": local("2026-03-07 16:00"),
    }  # fmt: skip
    args.update(kw)
    with pytest.raises(ChangeRefused) as exc:
        ask(team, **args)
    assert exc.value.rule == rule
    assert words in exc.value.message


@pytest.mark.parametrize(
    ("kw", "rule", "words"),
    [
        ({"counterpart": None}, "invalid", "needs the colleague"),
        ({"counterpart": "b"}, "invalid", "with someone else"),
        ({"actor": "c", "counterpart": "b"}, "not_holder", "c does not hold"),
        ({"swap_end": None}, "invalid", "both swap_start and swap_end"),
        ({"swap_start": local("2026-03-04 10:00"), "swap_end": local("2026-03-04 12:00")},
         "invalid", "overlap"),
        ({"swap_end": local("2026-03-10 07:00")}, "invalid", "swap_end must be after"),
        ({"counterpart": "a"}, "not_holder", "a does not hold rota 'week' over all of the slot"),
    ],
)  # fmt: skip
def test_swap_refusals_name_the_rule(
    team: TeamConfig, kw: dict[str, object], rule: str, words: str
) -> None:
    args: dict[str, object] = {
        "actor": "b", "kind": "swap", "counterpart": "c",
        "start": local("2026-03-04 08:00"), "end": local("2026-03-05 08:00"),
        "swap_start": local("2026-03-10 08:00"), "swap_end": local("2026-03-10 18:00"),
    }  # fmt: skip
    args.update(kw)
    with pytest.raises(ChangeRefused) as exc:
        ask(team, **args)
    assert exc.value.rule == rule
    assert words in exc.value.message


# -- permissions and the state machine -------------------------------------------------

LATER = NOW + timedelta(hours=1)


def test_cover_needs_a_manager(team: TeamConfig) -> None:
    request = cover(team)
    for actor in ("a", "b", "c"):
        with pytest.raises(ChangeNotAllowed, match="needs a manager"):
            changes.approve(team, request, actor, as_manager=False, now=LATER)
    with pytest.raises(ChangeNotAllowed, match="c is not a manager"):
        changes.approve(team, request, "c", as_manager=True, now=LATER)  # a caller's mistake
    with pytest.raises(ChangeRefused, match="a cover needs no consent"):
        changes.consent(team, request, "b", LATER)
    done = changes.approve(team, request, "m", as_manager=True, now=LATER, note="ok")
    assert (done.status, done.decided_by, done.decided_at, done.decision_note) == (
        "approved", "m", LATER, "ok",
    )  # fmt: skip


def test_permission_error_is_both_kinds(team: TeamConfig) -> None:
    with pytest.raises(PermissionError) as exc:
        changes.approve(team, cover(team), "a", as_manager=False, now=LATER)
    assert isinstance(exc.value, ChangeRefused) and exc.value.rule == "permission"


def test_swap_needs_consent_then_a_manager(team: TeamConfig) -> None:
    request = swap(team)
    with pytest.raises(ChangeNotAllowed, match="only c can agree"):
        changes.consent(team, request, "a", LATER)
    agreed = changes.consent(team, request, "c", LATER)
    assert agreed.status == "requested" and agreed.consented_at == LATER
    with pytest.raises(ChangeRefused, match="already agreed") as exc:
        changes.consent(team, agreed, "c", LATER)
    assert exc.value.rule == "state"
    done = changes.approve(team, agreed, "n", as_manager=True, now=LATER)
    assert done.status == "approved" and done.consented


def test_counterpart_approval_is_consent(team: TeamConfig) -> None:
    agreed = changes.approve(team, swap(team), "c", as_manager=False, now=LATER)
    assert agreed.status == "requested" and agreed.consented


def test_manager_may_approve_a_swap_without_consent(team: TeamConfig) -> None:
    done = changes.approve(team, swap(team), "m", as_manager=True, now=LATER)
    assert done.status == "approved" and not done.consented


def test_consent_is_enough_when_the_team_says_so(tmp_path: Path) -> None:
    team = load(tmp_path, "    changes: {manager_approval: false}\n").teams["t"]
    done = changes.consent(team, swap(team), "c", LATER)
    assert (done.status, done.decided_by) == ("approved", "c")


def test_no_self_approval_unless_allowed(tmp_path: Path) -> None:
    strict = load(tmp_path).teams["t"]
    own = cover(strict, actor="m")
    with pytest.raises(ChangeNotAllowed, match="another manager decides"):
        changes.approve(strict, own, "m", as_manager=True, now=LATER)
    assert changes.approve(strict, own, "n", as_manager=True, now=LATER).status == "approved"
    lenient = load(tmp_path, "    changes: {self_approval: true}\n").teams["t"]
    own = cover(lenient, actor="m")
    assert changes.approve(lenient, own, "m", as_manager=True, now=LATER).status == "approved"


def test_refusals(team: TeamConfig) -> None:
    request = swap(team)
    with pytest.raises(ChangeNotAllowed):
        changes.refuse(team, request, "a", as_manager=False, now=LATER)
    with pytest.raises(ChangeNotAllowed):
        changes.refuse(team, request, "a", as_manager=True, now=LATER)
    by_colleague = changes.refuse(team, request, "c", as_manager=False, now=LATER, note="no")
    assert (by_colleague.status, by_colleague.decision_note) == ("refused", "no")
    by_manager = changes.refuse(team, cover(team), "m", as_manager=True, now=LATER)
    assert by_manager.status == "refused"


def test_cancel_by_the_requester_only(team: TeamConfig) -> None:
    request = cover(team)
    with pytest.raises(ChangeNotAllowed, match="only a can cancel"):
        changes.cancel(request, "m", LATER)
    assert changes.cancel(request, "a", LATER).status == "cancelled"


@pytest.mark.parametrize("status", ["approved", "refused", "cancelled"])
def test_nothing_happens_to_a_decided_request(team: TeamConfig, status: str) -> None:
    decided = replace(swap(team), status=status)  # type: ignore[arg-type]
    steps = [
        lambda: changes.approve(team, decided, "m", as_manager=True, now=LATER),
        lambda: changes.approve(team, decided, "c", as_manager=False, now=LATER),
        lambda: changes.refuse(team, decided, "m", as_manager=True, now=LATER),
        lambda: changes.consent(team, decided, "c", LATER),
        lambda: changes.cancel(decided, "b", LATER),
    ]
    for step in steps:
        with pytest.raises(ChangeRefused) as exc:
            step()
        assert exc.value.rule == "state" and status in exc.value.message


# -- overrides and the overlay -------------------------------------------------------


def test_approved_changes_become_overrides_later_wins(config: AppConfig) -> None:
    team = config.teams["t"]
    first = changes.approve(team, cover(team), "m", as_manager=True, now=LATER)
    second = replace(
        changes.approve(team, cover(team, actor="c"), "m", as_manager=True, now=LATER),
        id="r2", decided_at=LATER + timedelta(minutes=5),
    )  # fmt: skip
    pending = replace(cover(team), id="r3")
    made = approved_overrides([second, pending, first])
    assert [o.person for o in made] == ["a", "c"]  # approval order; pending left out
    assert made[0].requested_by == "a"
    assert made[0].reason == "web change r1, approved by m: I'll take it"
    saturday = local("2026-03-07 12:00")
    assert who_is_on_call(team, "week", saturday) == "b"
    live = apply_changes(config, {"t": made})
    assert live.teams["t"].overrides[-2:] == made
    assert who_is_on_call(live.teams["t"], "week", saturday) == "c"
    plan = build_plan(live, "+33180000000", saturday)
    assert plan is not None and plan.hops[0].person_id == "c"


def test_swap_overrides_exchange_both_slots(config: AppConfig) -> None:
    team = config.teams["t"]
    done = changes.approve(team, swap(team), "m", as_manager=True, now=LATER)
    live = apply_changes(config, {"t": done.overrides()}).teams["t"]
    assert who_is_on_call(live, "week", local("2026-03-04 12:00")) == "c"
    assert who_is_on_call(live, "week", local("2026-03-10 12:00")) == "b"
    assert who_is_on_call(live, "week", local("2026-03-10 19:00")) == "c"


def test_overlay_keeps_config_when_nothing_applies(config: AppConfig) -> None:
    assert apply_changes(config, {}) is config
    team = config.teams["t"]
    done = changes.approve(team, cover(team), "m", as_manager=True, now=LATER)
    gone = done.overrides()[0].model_copy(update={"person": "zed"})
    assert apply_changes(config, {"t": (gone,), "other": done.overrides()}) is config


# -- labour checks ----------------------------------------------------------------------

STRICT = """    labour:
      double_booking: error
      notice: {days: 15, level: error}
"""


def test_double_booking_refuses_with_the_rule(tmp_path: Path) -> None:
    team = load(tmp_path, STRICT).teams["t"]
    # a holds nights that week: taking the week rota on a Tuesday night books a twice.
    request = ask(
        team, actor="a", kind="cover",
        start=local("2026-03-03 20:00"), end=local("2026-03-03 22:00"),
    )  # fmt: skip
    found = labour_findings(team, (), request, NOW)
    assert [f.rule for f in found] == ["double_booking"] and found[0].person == "a"
    with pytest.raises(ChangeRefused) as exc:
        check_labour(team, (), request, NOW)
    assert exc.value.rule == "double_booking" and "on call in both" in exc.value.message
    # A warning-level rule does not refuse.
    lenient = load(tmp_path).teams["t"]
    assert labour_findings(lenient, (), request, NOW) == []


def test_two_way_swap_into_a_double_booking(tmp_path: Path) -> None:
    team = load(tmp_path, STRICT).teams["t"]
    request = ask(
        team, actor="b", kind="swap", counterpart="c",
        start=local("2026-03-04 08:00"), end=local("2026-03-05 08:00"),
        swap_start=local("2026-03-10 08:00"), swap_end=local("2026-03-11 08:00"),
    )  # fmt: skip
    with pytest.raises(ChangeRefused) as exc:
        check_labour(team, (), request, NOW)
    assert exc.value.rule == "double_booking"  # b holds nights that week


def test_notice_period(tmp_path: Path) -> None:
    team = load(tmp_path, STRICT).teams["t"]
    request = cover(team)
    check_labour(team, (), request, NOW)  # five weeks ahead
    close = local("2026-03-01 12:00").astimezone(UTC)
    with pytest.raises(ChangeRefused) as exc:
        check_labour(team, (), request, close)
    assert exc.value.rule == "notice" and "less than 15 days ahead" in exc.value.message


def test_rest_rules_refuse_new_findings_only(tmp_path: Path) -> None:
    # Work hours that break the daily rest for everyone: a finding already there
    # is nobody's change; n, who holds nothing, gets it only by taking a slot.
    extra = """    labour:
      daily_rest: {hours: 11, level: error}
      work_hours: {mon-sun: "06:00-22:00"}
"""
    team = load(tmp_path, extra).teams["t"]
    held = cover(team)  # a already holds nights that week: nothing new for a or b
    assert labour_findings(team, (), held, NOW) == []
    newcomer = cover(team, actor="n")
    found = labour_findings(team, (), newcomer, NOW)
    assert found and {f.rule for f in found} == {"daily_rest"} and found[0].person == "n"


def test_approved_changes_count_in_the_base(tmp_path: Path) -> None:
    team = load(tmp_path, STRICT).teams["t"]
    first = changes.approve(team, cover(team), "m", as_manager=True, now=LATER)
    # the same change again is nothing new once the first is in force
    assert labour_findings(team, first.overrides(), replace(first, id="r2"), NOW) == []


# -- configuration ----------------------------------------------------------------------


def test_managers_must_be_people_of_the_team(tmp_path: Path) -> None:
    path = tmp_path / "astreinte.yaml"
    path.write_text(CONFIG.replace("managers: [m, n]", "managers: [m, zed]"), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_checked_config(path)
    (issue,) = [str(i) for i in exc.value.issues]
    line = CONFIG.splitlines().index("    managers: [m, n]") + 1
    assert f":{line}: teams.t.managers[1]: unknown person 'zed'" in issue


def test_change_settings_defaults(config: AppConfig) -> None:
    team = config.teams["t"]
    assert team.changes.manager_approval is True and team.changes.self_approval is False
    assert config.changes_refresh_seconds == 5
