"""Hop targets (issue 14): a mobile through the trunk or a SIP endpoint of the PBX,
resolved once into the plan; the allow-list at originate; the trail; the fallback."""

from __future__ import annotations

import asyncio
import json
import textwrap
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from astreinte_ari.adapters.ari.client import AriNotFound
from astreinte_ari.adapters.ari.telephony import AriTelephony
from astreinte_ari.adapters.fallback.cascade import dial_data
from astreinte_ari.adapters.fallback.lastresort import last_resort_target
from astreinte_ari.adapters.fallback.plancache import (
    plan_from_json,
    plan_to_json,
    read_cached_setup,
    refresh_plan_cache,
)
from astreinte_ari.adapters.fallback.records import call_audit_events
from astreinte_ari.adapters.pbx.checks import check_sip_endpoints
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.journal import event_from_json, event_to_json
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import get_call
from astreinte_ari.app.compose import dial_guard
from astreinte_ari.app.features import LiveConfig
from astreinte_ari.callflow.audit_events import HopStarted
from astreinte_ari.callflow.telephony import DialRefused
from astreinte_ari.config.loader import ConfigError, load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.devtools.localpbx import LocalAsterisk
from astreinte_ari.routing.plan import CallPlan, DialTarget, TargetKind
from astreinte_ari.routing.router import build_plan
from astreinte_ari.routing.targets import refusal
from tests.unit.fallback_helpers import FakeChannel, Ring
from tests.unit.fallback_helpers import _run as run_agi
from tests.unit.test_store import three_hop_call, write_all

LINE = "+33180000000"  # after hours: the desk phone, then alice's mobile, then bob
SWITCHBOARD = "+33180000010"  # in business hours: forwarded to sip:accueil
NIGHT = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # a Tuesday evening in Paris
DAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

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
            - {person: desk, timeout: 15}
            - {person: alice, timeout: 20}
            - {person: bob, timeout: 20}
      "+33180000010":
        name: Switchboard
        team: maint
        business_hours: {mon-fri: "08:00-18:00"}
        in_business_hours: {forward: "sip:accueil", timeout: 20}
        after_hours:
          hops: [{person: bob, timeout: 20}]
    teams:
      maint:
        people:
          desk: {name: Loge, sip: desk-101}
          alice: {name: Alice, mobile: "+33610000001", sip: "sip:desk-102"}
          bob: {name: Bob, mobile: "+33610000002", sip: 102, ring: sip}
    """
)


def _load(tmp_path: Path, text: str = CONFIG, name: str = "astreinte.yaml") -> AppConfig:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _issues(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, "bad.yaml")
    return [(issue.path, issue.message) for issue in info.value.issues]


def _plan(config: AppConfig, did: str = LINE, at: datetime = NIGHT) -> CallPlan:
    plan = build_plan(config, did, at)
    assert plan is not None
    return plan


@pytest.fixture
def config(tmp_path: Path) -> AppConfig:
    return _load(tmp_path)


# -- configuration --------------------------------------------------------------


def test_people_name_mobiles_and_sip_endpoints(config: AppConfig) -> None:
    people = config.teams["maint"].people
    assert (people["desk"].mobile, people["desk"].sip, people["desk"].rings) == (
        None,
        "desk-101",
        "sip",
    )
    # `sip: "sip:desk-102"` is the endpoint desk-102; the mobile stays the default.
    assert (people["alice"].sip, people["alice"].rings) == ("desk-102", "mobile")
    assert (people["bob"].sip, people["bob"].rings) == ("102", "sip")  # `sip: 102` (extension)
    assert config.lines[SWITCHBOARD].in_business_hours is not None
    assert config.lines[SWITCHBOARD].in_business_hours.forward == "sip:accueil"
    assert config.sip_endpoints() == {"desk-101", "desk-102", "102", "accueil"}


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ("desk: {name: Loge, sip: desk-101}", "desk: {name: Loge}",
         "teams.maint.people.desk", "needs a mobile"),
        ("sip: desk-101}", "sip: PJSIP/desk-101}",
         "teams.maint.people.desk.sip", "endpoint's name only"),
        ("sip: desk-101}", "sip: desk-101@pbx}",
         "teams.maint.people.desk.sip", "endpoint's name only"),
        ("sip: desk-101}", 'sip: "desk 101"}',
         "teams.maint.people.desk.sip", "not a SIP endpoint name"),
        ("sip: desk-101}", "sip: desk-101, ring: mobile}",
         "teams.maint.people.desk", "ring: mobile needs the person's mobile"),
        ('mobile: "+33610000001", sip: "sip:desk-102"}', 'mobile: "+33610000001", ring: sip}',
         "teams.maint.people.alice", "ring: sip needs the person's SIP endpoint"),
        ("ring: sip}", "ring: desk}", "teams.maint.people.bob.ring", "'mobile' or 'sip'"),
        ('forward: "sip:accueil"', 'forward: "accueil"',
         'lines."+33180000010".in_business_hours.forward', "nor a SIP endpoint like sip:desk-101"),
        ('forward: "sip:accueil"', 'forward: "sip:PJSIP/accueil"',
         'lines."+33180000010".in_business_hours.forward', "endpoint's name only"),
        ('mobile: "+33610000002"', 'mobile: "+33710000002"',
         "teams.maint.people.bob.mobile", "not allowed by trunk.allowed_prefixes"),
    ],
)  # fmt: skip
def test_check_names_each_mistake(
    tmp_path: Path, old: str, new: str, path: str, fragment: str
) -> None:
    assert old in CONFIG
    issues = _issues(tmp_path, CONFIG.replace(old, new, 1))
    assert len(issues) == 1 and issues[0][0] == path, issues
    assert fragment in issues[0][1], issues


def test_no_sms_or_voice_alerts_for_someone_without_a_mobile(tmp_path: Path) -> None:
    alerting = "alerting:\n  sms: {url: https://sms.example/api}\n"
    issues = _issues(tmp_path, CONFIG + alerting)
    assert issues == [
        (
            "teams.maint.people.desk",
            "desk has no mobile for sms and voice alerts: give them a mobile, "
            "or set alerting.channels.desk: [{via: email}]",
        )
    ]
    voice = alerting + "  channels:\n    desk: [{via: voice}]\n"
    assert [p for p, _ in _issues(tmp_path, CONFIG + voice)] == ["alerting.channels.desk"]
    email = alerting + "  channels:\n    desk: [{via: email}]\n"
    assert _load(tmp_path, CONFIG + email).alerting is not None


# -- the plan -------------------------------------------------------------------


def test_the_plan_resolves_each_target_once(config: AppConfig) -> None:
    hops = _plan(config).hops
    assert [h.target for h in hops] == [
        DialTarget(TargetKind.SIP, "desk-101", "PJSIP/desk-101"),
        DialTarget(TargetKind.TRUNK, "+33610000001", "PJSIP/+33610000001@operator"),
        DialTarget(TargetKind.SIP, "102", "PJSIP/102"),  # bob: ring: sip
    ]
    assert [h.number for h in hops] == ["sip:desk-101", "+33610000001", "sip:102"]
    assert [h.dial_string for h in hops] == [
        "PJSIP/desk-101",
        "PJSIP/+33610000001@operator",
        "PJSIP/102",
    ]


def test_a_business_forward_to_an_extension(config: AppConfig) -> None:
    (hop,) = _plan(config, SWITCHBOARD, DAY).hops
    assert hop.target == DialTarget(TargetKind.SIP, "accueil", "PJSIP/accueil")
    assert hop.require_accept is False


def test_a_call_keeps_the_dial_strings_of_its_plan(tmp_path: Path, config: AppConfig) -> None:
    plan = _plan(config)
    edited = _load(tmp_path, CONFIG.replace("PJSIP/{number}@operator", "PJSIP/{number}@other"))
    assert _plan(edited).hops[1].dial_string == "PJSIP/+33610000001@other"
    assert plan.hops[1].dial_string == "PJSIP/+33610000001@operator"  # unchanged
    assert refusal(edited, plan.hops[1].target) is None  # still allowed: dialled as planned


# -- the allow-list at originate ---------------------------------------------------


class FakeAriClient:
    def __init__(self) -> None:
        self.originated: list[dict[str, Any]] = []

    async def originate(self, **kwargs: Any) -> dict[str, Any]:
        self.originated.append(kwargs)
        return {}


async def _originate(port: AriTelephony, target: DialTarget) -> None:
    await port.originate(
        channel_id="astreinte-agent-x", target=target, app_args=(), caller_id="+33", timeout_s=5
    )


def test_originate_dials_the_plans_string_and_rechecks_the_allow_list(
    tmp_path: Path, config: AppConfig
) -> None:
    client = FakeAriClient()
    live = LiveConfig(config)
    port = AriTelephony(client, dial_guard(live))  # type: ignore[arg-type]
    desk, alice, bob = (h.target for h in _plan(config).hops)
    # The YAML changes during the call: the trunk goes elsewhere, bob loses his desk
    # phone, and desk-101 is no longer named anywhere.
    live.current = _load(
        tmp_path,
        CONFIG.replace("PJSIP/{number}@operator", "PJSIP/{number}@other")
        .replace("desk: {name: Loge, sip: desk-101}", "desk: {name: Loge, sip: desk-103}")
        .replace("sip: 102, ring: sip", "ring: mobile"),
        "edited.yaml",
    )
    asyncio.run(_originate(port, alice))
    assert client.originated[-1]["endpoint"] == "PJSIP/+33610000001@operator"  # the plan's
    for gone in (desk, bob):
        with pytest.raises(DialRefused, match="not named by the configuration"):
            asyncio.run(_originate(port, gone))
    assert len(client.originated) == 1  # never dialled


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (DialTarget(TargetKind.TRUNK, "+33899000000", "PJSIP/+33899000000@operator"),
         "not allowed by the trunk (+336)"),
        (DialTarget(TargetKind.TRUNK, "+33610000001", "PJSIP/+33899000000@operator"),
         "does not dial '+33610000001'"),
        (DialTarget(TargetKind.SIP, "desk-999", "PJSIP/desk-999"), "not named by the"),
        (DialTarget(TargetKind.SIP, "desk-101", "PJSIP/desk-101&PJSIP/x"), "does not dial SIP"),
        (DialTarget(TargetKind.SIP, "desk-101", "Local/desk-101@default"), "does not dial SIP"),
        # A group (issue 15) is allowed only if every member is, and dials just them.
        (DialTarget(TargetKind.SIP, "g", "PJSIP/desk-101&PJSIP/desk-999", members=(
            DialTarget(TargetKind.SIP, "desk-101", "PJSIP/desk-101"),
            DialTarget(TargetKind.SIP, "desk-999", "PJSIP/desk-999"))),
         "'desk-999' is not named"),
        (DialTarget(TargetKind.SIP, "g", "PJSIP/desk-101&PJSIP/desk-999", members=(
            DialTarget(TargetKind.SIP, "desk-101", "PJSIP/desk-101"),)),
         "not its members' dial strings"),
    ],
)  # fmt: skip
def test_refusal_names_why(config: AppConfig, target: DialTarget, reason: str) -> None:
    assert reason in (refusal(config, target) or "")


def test_every_planned_target_is_allowed(config: AppConfig) -> None:
    for did, at in ((LINE, NIGHT), (SWITCHBOARD, DAY), (SWITCHBOARD, NIGHT)):
        for hop in _plan(config, did, at).hops:
            assert refusal(config, hop.target) is None, hop


# -- the trail ------------------------------------------------------------------


def test_hop_started_journal_round_trip_old_and_new() -> None:
    new = HopStarted("c", "h", 1, "p", "desk", "Loge", "sip:desk-101", NIGHT, "sip", "PJSIP/d")
    assert event_from_json(event_to_json(new)) == new
    old_line = json.loads(event_to_json(new))
    del old_line["fields"]["target_kind"], old_line["fields"]["target"]  # an older journal
    old = event_from_json(json.dumps(old_line))
    assert old == replace(new, target_kind=None, target=None)


def test_kind_and_target_are_stored_and_verified(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        events = three_hop_call()
        asyncio.run(write_all(engine, events))
        call = get_call(engine, events[0].call_id)  # type: ignore[union-attr]
        assert call is not None
        assert [(h.target_kind, h.target) for h in call.hops][2] == ("sip", "PJSIP/desk-301")
        assert call.hops[2].target_text == "sip:desk-301 (sip: PJSIP/desk-301)"
        assert call.hops[1].target_text == "+33622222222"  # recorded before 0009
        assert call.hops[2].to_json_dict()["target_kind"] == "sip"
        report = verify(engine, open_after=None)
        assert report.ok, report.problems
    finally:
        engine.dispose()


# -- the dialplan fallback ---------------------------------------------------------


def test_fallback_rings_the_same_targets(tmp_path: Path, config: AppConfig) -> None:
    plan = _plan(config)
    assert dial_data(plan.hops[0], plan, "PJSIP/caller-1", tmp_path).startswith(
        "PJSIP/desk-101,15,rU(astreinte-fallback-accept^PJSIP/caller-1^"
    )
    assert last_resort_target(config, LINE, NIGHT) == "PJSIP/desk-101"
    assert last_resort_target(config, SWITCHBOARD, DAY) == "PJSIP/accueil"


def test_plan_cache_keeps_typed_targets(tmp_path: Path) -> None:
    cache_dir = tmp_path / "spool"
    config = _load(tmp_path, CONFIG + f'fallback: {{spool_dir: "{cache_dir}"}}\n')
    plan = _plan(config)
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan
    assert refresh_plan_cache(config, NIGHT, force=True)
    cached = read_cached_setup(cache_dir, str(config.source_path), LINE, NIGHT.timestamp())
    assert cached is not None and cached.plan == plan


def test_fallback_agi_dials_a_sip_hop_and_records_its_kind(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    path = tmp_path / "agi.yaml"
    path.write_text(CONFIG + f'fallback: {{spool_dir: "{spool}"}}\n', encoding="utf-8")
    channel = FakeChannel(
        {"PJSIP/desk-101": Ring("ANSWER", "16", key="1", ring_s=2, prompt_s=2, talk_s=5)},
        at=NIGHT.timestamp(),
    )
    assert run_agi(path, channel, "1764622800.7").value == "accepted"
    assert [d.split(",")[0] for a, d in channel.apps if a == "Dial"] == ["PJSIP/desk-101"]
    (spooled,) = spool.glob("*.jsonl")
    steps = [json.loads(line) for line in spooled.read_text().splitlines()]
    hop = next(s for s in steps if s["event"] == "hop")
    assert (hop["number"], hop["kind"], hop["target"]) == ("sip:desk-101", "sip", "PJSIP/desk-101")
    started = [e for e in call_audit_events("1764622800.7", steps) if isinstance(e, HopStarted)]
    assert [(e.number, e.target_kind, e.target) for e in started] == [
        ("sip:desk-101", "sip", "PJSIP/desk-101")
    ]


# -- the test PBX ---------------------------------------------------------------


def test_local_pbx_declares_desk_phones(tmp_path: Path) -> None:
    pbx = LocalAsterisk(
        tmp_path, mobiles={"+33610000001": 5071}, sip_phones={"desk-101": 5072}, rtp_start=20000
    )
    conf = pbx._pjsip_conf()
    assert "[desk-101]\ntype = aor\ncontact = sip:desk-101@127.0.0.1:5072\n" in conf
    assert "[desk-101]\ntype = endpoint\n" in conf
    assert "contact = sip:+33610000001@127.0.0.1:5071" in conf
    with pytest.raises(ValueError, match="cannot name a PJSIP endpoint"):
        LocalAsterisk(tmp_path, sip_phones={"desk 1": 5073}, rtp_start=20000)._pjsip_conf()


# -- doctor ---------------------------------------------------------------------


class EndpointsClient:
    """GET /endpoints/PJSIP/<name>: the states of the endpoints this PBX has."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states

    async def request(self, method: str, path: str) -> dict[str, Any]:
        name = path.rsplit("/", 1)[1]
        if name not in self.states:
            raise AriNotFound(404, method, path, "Endpoint not found")
        return {"technology": "PJSIP", "resource": name, "state": self.states[name]}


@pytest.mark.parametrize(
    ("states", "ok", "fragment"),
    [
        ({"desk-101": "online", "desk-102": "unknown", "102": "online", "accueil": "online"},
         True, "4 endpoint(s) present"),
        ({"desk-101": "online", "102": "online", "accueil": "online"},
         False, "not on this Asterisk: desk-102"),
        ({"desk-101": "offline", "desk-102": "online", "102": "online", "accueil": "online"},
         False, "offline (no registered contact, or qualify unanswered): desk-101"),
    ],
)  # fmt: skip
def test_doctor_checks_the_sip_phones_the_yaml_rings(
    config: AppConfig, states: dict[str, str], ok: bool, fragment: str
) -> None:
    check = asyncio.run(check_sip_endpoints(EndpointsClient(states), config))  # type: ignore[arg-type]
    assert check.ok is ok and fragment in check.detail, check
