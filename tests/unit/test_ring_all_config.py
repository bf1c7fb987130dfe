"""Ring-all hops in the configuration, the plan, the plan cache and the fallback."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.cascade import UnsafeValue, dial_data
from astreinte_ari.adapters.fallback.lastresort import last_resort_target
from astreinte_ari.adapters.fallback.plancache import plan_from_json, plan_to_json
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.plan import CallPlan, TargetKind
from astreinte_ari.routing.router import build_plan
from astreinte_ari.routing.targets import refusal

LINE = "+33180000000"
NIGHT = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # a Tuesday evening in Paris

CONFIG = textwrap.dedent(
    """\
    timezone: Europe/Paris
    ari: {url: http://127.0.0.1:8088, username: astreinte}
    trunk: {dial: "PJSIP/{number}@operator", caller_id: "+33180000000", allowed_prefixes: ["+336"]}
    lines:
      "+33180000000":
        name: Maintenance
        team: maint
        after_hours:
          hops:
            - {ring_all: [desk, alice, {rota: primary}], timeout: 20, label: first-line}
            - {person: bob, timeout: 20}
    teams:
      maint:
        people:
          desk: {name: Loge, sip: desk-101}
          alice: {name: Alice, mobile: "+33610000001"}
          bob: {name: Bob, mobile: "+33610000002"}
        rotas:
          primary: {every: week, handoff: "mon 09:00", start: 2026-01-05, people: [ROTA]}
    """
)


def _config(tmp_path: Path, on_call: str = "bob") -> AppConfig:
    path = tmp_path / "astreinte.yaml"
    path.write_text(CONFIG.replace("ROTA", on_call), encoding="utf-8")
    return load_config(path)


def _plan(config: AppConfig) -> CallPlan:
    plan = build_plan(config, LINE, NIGHT)
    assert plan is not None
    return plan


def test_a_ring_all_hop_rings_each_person_once_at_once(tmp_path: Path) -> None:
    config = _config(tmp_path, on_call="bob")
    plan = _plan(config)
    group = plan.hops[0]
    assert [m.person_id for m in group.members] == ["desk", "alice", "bob"]
    assert {m.label for m in group.members} == {"first-line"}
    assert {m.ring_timeout_s for m in group.members} == {20}
    assert group.target.kind is TargetKind.GROUP
    assert group.dial_string == (
        "PJSIP/desk-101&PJSIP/+33610000001@operator&PJSIP/+33610000002@operator"
    )
    assert group.number == "sip:desk-101&+33610000001&+33610000002"
    assert refusal(config, group.target) is None
    # bob, rung in the ring-all, is rung again alone as the next step
    assert [h.person_id for h in plan.hops[1:]] == ["bob"]


def test_the_rota_entry_is_whoever_is_on_call(tmp_path: Path) -> None:
    plan = _plan(_config(tmp_path, on_call="alice"))  # alice twice: rung once
    assert [m.person_id for m in plan.hops[0].members] == ["desk", "alice"]


def test_a_group_target_is_checked_member_by_member(tmp_path: Path) -> None:
    config = _config(tmp_path)
    group = _plan(config).hops[0].target
    outside = dataclasses.replace(group.members[1], address="+33899000000",
                                  dial_string="PJSIP/+33899000000@operator")  # fmt: skip
    bad = dataclasses.replace(
        group,
        members=(group.members[0], outside),
        dial_string=f"{group.members[0].dial_string}&{outside.dial_string}",
    )
    assert refusal(config, bad) == "'+33899000000' is not allowed by the trunk (+336)"
    smuggled = dataclasses.replace(group, dial_string=group.dial_string + "&PJSIP/evil")
    assert refusal(config, smuggled) is not None


def test_the_plan_cache_keeps_the_members(tmp_path: Path) -> None:
    plan = _plan(_config(tmp_path))
    assert plan_from_json(plan_to_json(plan)) == plan


def test_the_fallback_dials_every_member_at_once(tmp_path: Path) -> None:
    plan = _plan(_config(tmp_path))
    data = dial_data(plan.hops[0], plan, "PJSIP/caller-00000001", Path("/snd"))
    dial, timeout, options = data.split(",", 2)
    assert dial == plan.hops[0].dial_string and timeout == "20"
    assert options.startswith("rU(astreinte-fallback-accept^")


@pytest.mark.parametrize("bad", ["PJSIP/a&", "&PJSIP/a", "PJSIP/a&PJSIP/b,60"])
def test_the_fallback_refuses_a_broken_group_dial_string(tmp_path: Path, bad: str) -> None:
    plan = _plan(_config(tmp_path))
    hop = dataclasses.replace(
        plan.hops[0], target=dataclasses.replace(plan.hops[0].target, dial_string=bad)
    )
    with pytest.raises(UnsafeValue):
        dial_data(hop, plan, "PJSIP/caller-00000001", Path("/snd"))


def test_the_last_resort_of_a_ring_all_line_is_its_first_person(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert last_resort_target(config, LINE, NIGHT) == "PJSIP/desk-101"
