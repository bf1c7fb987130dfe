"""Self-service changes (schedule/changes.py): building cover and swap requests (each
rule), the permission cases and the state machine of a request."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari.config.model import TeamConfig
from astreinte_ari.schedule import changes
from astreinte_ari.schedule.changes import ChangeNotAllowed, ChangeRefused
from tests.unit.rota_changes_helpers import (
    LATER,
    ask,
    config_fixture,  # noqa: F401 (a fixture)
    cover,
    load,
    local,
    swap,
    team_fixture,  # noqa: F401 (a fixture)
)


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
