"""Whole-document checks and preparation, run on the raw (YAML-shaped) data.

They work on plain dicts rather than on the models so that a reference error
is still reported when some unrelated part of the file failed validation:
ops staff get every problem of their edit in one run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from astreinte_ari.config.fields import E164_RE

Loc = tuple[str | int, ...]
Issue = tuple[Loc, str]
_SQLITE_RELATIVE = re.compile(r"^(sqlite(?:\+\w+)?):///(?!/)(?!:memory:)(.+)$")
ROUTE_KEYS = ("after_hours", "night", "weekend", "holiday")


def _map(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _names(mapping: Mapping[Any, Any]) -> str:
    return ", ".join(str(k) for k in mapping) or "none"


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str | Path) and str(value) and not Path(value).is_absolute():
        return Path(os.path.normpath(base / value))
    return value


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def prepare_raw(data: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve relative paths against the config file's directory and give each
    team the global time zone unless it sets its own."""
    out: dict[str, Any] = dict(data)
    source = out.get("source_path")
    if isinstance(source, str | Path):
        base = Path(source).resolve().parent
        for section, key in (
            ("ari", "password_file"),
            ("database", "url_file"),
            ("storage", "recordings_dir"),
            ("storage", "journal_dir"),
            ("sounds", "dir"),
            ("cel", "file"),
            ("audit", "signing_key_file"),
            ("audit", "witness_file"),
        ):
            if isinstance(out.get(section), Mapping) and key in out[section]:
                out[section] = {**out[section], key: _resolve(base, out[section][key])}
        db = out.get("database")
        if isinstance(db, Mapping) and isinstance(db.get("url"), str):
            m = _SQLITE_RELATIVE.match(db["url"])
            if m:
                out["database"] = {**db, "url": f"{m.group(1)}:///{base / m.group(2)}"}
    tz = out.get("timezone")
    # An invalid zone is reported once, at `timezone`, not again for every team.
    if isinstance(out.get("teams"), Mapping) and isinstance(tz, str) and _valid_zone(tz):
        out["teams"] = {
            name: ({"timezone": tz, **team} if isinstance(team, Mapping) else team)
            for name, team in out["teams"].items()
        }
    return out


def reference_issues(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Unknown teams, rotas and persons; numbers the trunk may not dial."""
    issues: list[tuple[Loc, str]] = []
    teams = _map(data.get("teams"))
    raw_prefixes = _map(data.get("trunk")).get("allowed_prefixes")
    prefixes = tuple(p for p in _seq(raw_prefixes) if isinstance(p, str))

    def check_number(loc: Loc, value: Any) -> None:
        if not isinstance(value, str) or not isinstance(raw_prefixes, list | tuple):
            return
        number = value.replace(" ", "")
        if E164_RE.match(number) and not number.startswith(prefixes):
            issues.append(
                (loc, f"{number} is not allowed by trunk.allowed_prefixes ({', '.join(prefixes)})")
            )

    for team_name, raw_team in teams.items():
        team = _map(raw_team)
        people = _map(team.get("people"))
        rotas = _map(team.get("rotas"))
        where: Loc = ("teams", team_name)
        for person_id, person in people.items():
            check_number((*where, "people", person_id, "mobile"), _map(person).get("mobile"))
        if not isinstance(team.get("people"), Mapping):
            continue  # `people` missing or misspelt is reported once, not at every name
        for rota_name, rota in rotas.items():
            # Inline rotation, or each of its `layers`.
            rota_loc: Loc = (*where, "rotas", rota_name)
            layers = [(rota_loc, _map(rota))] + [
                ((*rota_loc, "layers", j), _map(layer))
                for j, layer in enumerate(_seq(_map(rota).get("layers")))
            ]
            for layer_loc, layer in layers:
                for i, person_id in enumerate(_seq(layer.get("people"))):
                    if isinstance(person_id, str) and person_id not in people:
                        issues.append(
                            (
                                (*layer_loc, "people", i),
                                f"unknown person '{person_id}' (team {team_name} has: "
                                f"{_names(people)})",
                            )
                        )
        for i, manager in enumerate(_seq(team.get("managers"))):
            if isinstance(manager, str) and manager not in people:
                issues.append(
                    (
                        (*where, "managers", i),
                        f"unknown person '{manager}' (managers must be people of team "
                        f"{team_name}: {_names(people)})",
                    )
                )
        for key in ("overrides", "swaps", "holiday_rules"):
            for i, item in enumerate(_seq(team.get(key))):
                issues += _target_issues((*where, key, i), _map(item), team_name, people, rotas)

    for did, raw_line in _map(data.get("lines")).items():
        line = _map(raw_line)
        team_name = line.get("team")
        if isinstance(team_name, str) and team_name not in teams:
            issues.append(
                (("lines", did, "team"), f"unknown team '{team_name}' (teams: {_names(teams)})")
            )
        forward = _map(line.get("in_business_hours")).get("forward")
        check_number(("lines", did, "in_business_hours", "forward"), forward)
        test_call = _map(line.get("test_call"))
        check_number(("lines", did, "test_call", "endpoint"), test_call.get("endpoint"))
        if test_call:
            issues += _test_call_issues(("lines", did, "test_call"), test_call, data, teams)
        issues += _menu_issues(did, line, _map(data.get("lines")))
        if not isinstance(team_name, str) or team_name not in teams:
            continue
        team = _map(teams[team_name])
        if not isinstance(team.get("people"), Mapping):
            continue
        for route_key in ROUTE_KEYS:
            for i, hop in enumerate(_seq(_map(line.get(route_key)).get("hops"))):
                hop_loc: Loc = ("lines", did, route_key, "hops", i)
                people, rotas = _map(team.get("people")), _map(team.get("rotas"))
                issues += _target_issues(hop_loc, _map(hop), team_name, people, rotas)
                for j, entry in enumerate(_seq(_map(hop).get("ring_all"))):
                    entry_loc: Loc = (*hop_loc, "ring_all", j)
                    if isinstance(entry, str) and entry not in people:
                        issues.append(
                            (entry_loc, f"unknown person '{entry}' (team {team_name} has: "
                                        f"{_names(people)})")
                        )  # fmt: skip
                    elif isinstance(entry, Mapping):
                        issues += _target_issues(entry_loc, entry, team_name, people, rotas)
    if isinstance(data.get("alerting"), Mapping):
        issues += _alerting_issues(data["alerting"], teams)
        issues += _no_mobile_issues(data["alerting"], teams)
    issues += _web_issues(_map(data.get("web")), teams)
    return issues


def _web_issues(web: Mapping[Any, Any], teams: Mapping[Any, Any]) -> list[Issue]:
    """web.admins / web.auditors name people of the YAML (they sign in as them)."""
    everyone = {p for t in teams.values() for p in _map(_map(t).get("people"))}
    return [
        (("web", key, i), f"unknown person '{who}' (web.{key} names people of the teams)")
        for key in ("admins", "auditors")
        for i, who in enumerate(_seq(web.get(key)))
        if isinstance(who, str) and who not in everyone
    ]


_PHONE_CHANNELS = ("sms", "voice")
_DEFAULT_CHANNELS = ("sms", "voice")  # AlertingConfig.default_channels


def _no_mobile_issues(alerting: Mapping[Any, Any], teams: Mapping[Any, Any]) -> list[Issue]:
    """A person with only a SIP endpoint (a desk phone) cannot get SMS or voice alerts:
    say so now, not at the first missed call."""
    issues: list[Issue] = []
    channels = _map(alerting.get("channels"))
    raw_default = alerting.get("default_channels")
    default = (
        tuple(_map(c).get("via") for c in _seq(raw_default))
        if raw_default is not None
        else _DEFAULT_CHANNELS
    )
    for team_name, team in teams.items():
        for person_id, person in _map(_map(team).get("people")).items():
            if not isinstance(person, Mapping) or person.get("mobile") is not None:
                continue
            if person_id in channels:
                vias = tuple(_map(c).get("via") for c in _seq(channels[person_id]))
                loc: Loc = ("alerting", "channels", person_id)
            else:
                vias, loc = default, ("teams", team_name, "people", person_id)
            phone = sorted({v for v in vias if v in _PHONE_CHANNELS})
            if phone:
                issues.append(
                    (
                        loc,
                        f"{person_id} has no mobile for {' and '.join(phone)} alerts: give "
                        f"them a mobile, or set alerting.channels.{person_id}: [{{via: email}}]",
                    )
                )
    return issues


def _alerting_issues(alerting: Mapping[Any, Any], teams: Mapping[Any, Any]) -> list[Issue]:
    """People and rotas named under `alerting:` must exist: an unknown replacement
    would otherwise surface only at a missed shift start, as a hop nobody rings."""
    issues: list[Issue] = []
    everyone = {p: t for t, team in teams.items() for p in _map(_map(team).get("people"))}
    for person_id in _map(alerting.get("channels")):
        if person_id not in everyone:
            issues.append(_unknown(("alerting", "channels", person_id), "person", person_id,
                                   everyone, "people"))  # fmt: skip
    for i, raw in enumerate(_seq(alerting.get("shift_start"))):
        spec, loc = _map(raw), ("alerting", "shift_start", i)
        team_name = spec.get("team")
        if not isinstance(team_name, str) or team_name not in teams:
            issues.append(_unknown((*loc, "team"), "team", team_name, teams, "teams"))
            continue
        team = _map(teams[team_name])
        in_team = f"team {team_name} has"
        # The replacement takes the rota's calls: a person of that team.
        for key, what, known, among in (
            ("rota", "rota", _map(team.get("rotas")), in_team),
            ("replacement", "person", _map(team.get("people")), in_team),
            ("supervisor", "person", everyone, "people"),
        ):
            name = spec.get(key)
            if isinstance(name, str) and name not in known:
                issues.append(_unknown((*loc, key), what, name, known, among))
    return issues


def _test_call_issues(
    loc: Loc, spec: Mapping[Any, Any], data: Mapping[str, Any], teams: Mapping[Any, Any]
) -> list[Issue]:
    """A failed test call alerts people of the line's team, through `alerting:`."""
    alerting = data.get("alerting")
    if not isinstance(alerting, Mapping):
        return [(loc, "a test call alerts when it fails: configure alerting: (docs/alerts.md)")]
    issues: list[Issue] = []
    team = _map(teams.get(_map(_map(data.get("lines")).get(loc[1])).get("team")))
    people = _map(team.get("people"))
    for i, person_id in enumerate(_seq(spec.get("alert"))):
        if isinstance(person_id, str) and team and person_id not in people:
            issues.append(_unknown((*loc, "alert", i), "person", person_id, people, "the team has"))
    policies = alerting.get("policies")
    policy = spec.get("policy", "missed_call")
    known = _map(policies) if policies is not None else {"missed_call": 1, "shift_start": 1}
    if isinstance(policy, str) and policy not in known:
        issues.append(_unknown((*loc, "policy"), "alert policy", policy, known, "have"))
    return issues


def _menu_issues(did: Any, line: Mapping[Any, Any], lines: Mapping[Any, Any]) -> list[Issue]:
    """A menu choice or caller route sends the call to another configured line, one
    with neither menu nor caller routes of its own (one level: no loops, no mazes)."""
    targets: list[tuple[Loc, Any]] = []
    menu = _map(line.get("menu"))
    for key, choice in _map(menu.get("choices")).items():
        targets.append((("lines", did, "menu", "choices", key, "line"), _map(choice).get("line")))
    for i, route in enumerate(_seq(line.get("caller_routes"))):
        targets.append((("lines", did, "caller_routes", i, "line"), _map(route).get("line")))
    issues: list[Issue] = []
    for loc, target in targets:
        if not isinstance(target, str):
            continue  # missing or not text: the model says so
        if target == did:
            issues.append((loc, f"'{target}' is this line itself: name another line"))
        elif target not in lines:
            issues.append(_unknown(loc, "line", target, lines, "lines"))
        elif _map(lines[target]).get("menu") or _map(lines[target]).get("caller_routes"):
            issues.append(
                (loc, f"line '{target}' has its own menu or caller_routes: a choice leads "
                      "to a line without them (one level only)")
            )  # fmt: skip
    return issues


def _unknown(loc: Loc, what: str, name: object, known: Mapping[Any, Any], among: str) -> Issue:
    return (loc, f"unknown {what} '{name}' ({among}: {_names(known)})")


def _target_issues(
    loc: Loc,
    item: Mapping[Any, Any],
    team_name: str,
    people: Mapping[Any, Any],
    rotas: Mapping[Any, Any],
) -> list[tuple[Loc, str]]:
    """A hop or override names a rota and/or a person of one team."""
    issues: list[tuple[Loc, str]] = []
    rota = item.get("rota")
    if isinstance(rota, str) and rota not in rotas:
        issues.append(
            ((*loc, "rota"), f"unknown rota '{rota}' (team {team_name} has: {_names(rotas)})")
        )
    person = item.get("person")
    if isinstance(person, str) and person not in people:
        issues.append(
            (
                (*loc, "person"),
                f"unknown person '{person}' (team {team_name} has: {_names(people)})",
            )
        )
    return issues
