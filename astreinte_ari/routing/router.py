"""build_plan: the pure decision of what one incoming call will do.

Computed once when the call arrives; a configuration or rota change during the
call does not alter it (see plan.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from astreinte_ari.config.model import (
    AppConfig,
    BusinessForward,
    HopConfig,
    LineConfig,
    NumberNotAllowed,
    Route,
    TeamConfig,
)
from astreinte_ari.routing.calendar import resolve_period
from astreinte_ari.routing.menu import caller_route_plans, menu_plan
from astreinte_ari.routing.plan import (
    AnnouncementMode,
    BusyAgents,
    CallPlan,
    FinalAction,
    Hop,
    Period,
    RecordingPolicy,
    VoicemailPolicy,
)
from astreinte_ari.routing.targets import contact_target, group_target, person_target
from astreinte_ari.schedule.rota import who_is_on_call

log = logging.getLogger(__name__)

DEFAULT_ANNOUNCEMENTS: dict[Period, str] = {
    Period.BUSINESS: "astreinte-business",
    Period.AFTER_HOURS: "astreinte-after-hours",
    Period.NIGHT: "astreinte-night",
    Period.WEEKEND: "astreinte-weekend",
    Period.HOLIDAY: "astreinte-holiday",
}
BUSINESS_FORWARD_LABEL = "business-forward"

# Hook for on-call overrides recorded at run time, outside the YAML (e.g. a
# replacement who acknowledged a missed shift start, see alerting/): given
# (team, rota, instant) it returns the person id holding the rota, or None to
# follow the configured rota. It must be fast and not block (in-memory lookup).
OnCallOverride = Callable[[str, str, datetime], str | None]


def route_for(line: LineConfig, period: Period) -> Route:
    """Per-period block if the line has one, else the after-hours route (also used
    in business hours when the line has no `in_business_hours` forward)."""
    specific = {
        Period.NIGHT: line.night,
        Period.WEEKEND: line.weekend,
        Period.HOLIDAY: line.holiday,
    }
    return specific.get(period) or line.after_hours


def _announcement(configured: str | None, period: Period) -> str | None:
    if configured is None:
        return DEFAULT_ANNOUNCEMENTS[period]
    return configured or None  # "" means "no announcement" (announcement: false)


def _refused(label: str, exc: NumberNotAllowed) -> None:
    # The loader rejects such targets; this guards configs built another way.
    log.error("hop %s skipped: %s", label, exc)


def resolve_hops(
    config: AppConfig,
    team: TeamConfig,
    route: Route,
    now: datetime,
    override: Callable[[str, datetime], str | None] | None = None,
) -> list[Hop]:
    """Route hops -> concrete people at `now`; the same person is not rung twice in a row.
    `override(rota, now)`, when given and not None, replaces the rota's person."""
    hops: list[Hop] = []
    for spec in route.hops:
        if spec.ring_all is not None:
            group = _ring_all_hop(config, team, spec, now, override)
            if group is not None:
                hops.append(group)
            continue
        if spec.rota is not None:
            replacement = override(spec.rota, now) if override is not None else None
            on_call = replacement or who_is_on_call(team, spec.rota, now)
            label = spec.label or spec.rota
            if on_call is None:
                log.info("hop %s skipped: nobody is on call in rota %s now", label, spec.rota)
                continue
            person_id = on_call
        else:
            person_id = spec.person or ""
            label = spec.label or person_id
        person = team.people.get(person_id)
        if person is None:
            log.error("hop %s skipped: unknown person %r", label, person_id)
            continue
        if hops and hops[-1].person_id == person_id:
            continue  # e.g. the supervisor is also this week's primary
        try:
            target = person_target(config, person)
        except NumberNotAllowed as exc:
            _refused(label, exc)
            continue
        hops.append(Hop(label, person_id, person.name, target, spec.timeout))
    return hops


def _ring_all_hop(
    config: AppConfig,
    team: TeamConfig,
    spec: HopConfig,
    now: datetime,
    override: Callable[[str, datetime], str | None] | None,
) -> Hop | None:
    """A `ring_all` hop -> one hop per person (each once), rung at once; a plain hop
    when only one is left (nobody on call in a rota), None when nobody is."""
    label = spec.label or "ring-all"
    people: list[str] = []
    for entry in spec.ring_all or ():
        if isinstance(entry, str):
            person_id: str | None = entry
        else:
            replacement = override(entry.rota, now) if override is not None else None
            person_id = replacement or who_is_on_call(team, entry.rota, now)
            if person_id is None:
                log.info("hop %s: nobody is on call in rota %s now", label, entry.rota)
        if person_id is not None and person_id not in people:
            people.append(person_id)
    members: list[Hop] = []
    for person_id in people:
        person = team.people.get(person_id)
        if person is None:
            log.error("hop %s: unknown person %r left out", label, person_id)
            continue
        try:
            target = person_target(config, person)
        except NumberNotAllowed as exc:
            _refused(label, exc)
            continue
        members.append(Hop(label, person_id, person.name, target, spec.timeout))
    if len(members) <= 1:
        return members[0] if members else None
    return Hop(
        label,
        "+".join(m.person_id for m in members),
        ", ".join(m.person_name for m in members),
        group_target(tuple(m.target for m in members)),
        spec.timeout,
        members=tuple(members),
    )


def _business_hop(config: AppConfig, line: LineConfig, fwd: BusinessForward) -> list[Hop]:
    try:
        target = contact_target(config, fwd.forward)
    except NumberNotAllowed as exc:
        _refused(BUSINESS_FORWARD_LABEL, exc)
        return []
    # A switchboard answers for the company: no "press 1" prompt.
    label = BUSINESS_FORWARD_LABEL
    return [Hop(label, label, line.name, target, fwd.timeout, require_accept=False)]


def build_plan(
    config: AppConfig,
    did: str,
    now: datetime,
    *,
    on_call_override: OnCallOverride | None = None,
    with_routes: bool = True,
) -> CallPlan | None:
    """The plan for a call to `did` arriving at aware instant `now`; None if the
    DID is not configured. `on_call_override`: see OnCallOverride. `with_routes`:
    include the menu and caller routes (a target line's plan never does: one level)."""
    line = config.lines.get(did)
    if line is None:
        return None

    def plan_of(target: str) -> CallPlan | None:
        return build_plan(config, target, now, on_call_override=on_call_override, with_routes=False)

    period = resolve_period(line, now, config.timezone)
    team = config.teams[line.team]

    if period is Period.BUSINESS and line.in_business_hours is not None:
        fwd = line.in_business_hours
        hops = _business_hop(config, line, fwd)
        announcement = fwd.announcement  # none unless configured
        final = fwd.finally_
    else:
        route = route_for(line, period)
        team_name = line.team
        override = (
            None
            if on_call_override is None
            else lambda rota, at: on_call_override(team_name, rota, at)
        )
        hops = resolve_hops(config, team, route, now, override)
        announcement = _announcement(route.announcement, period)
        final = route.finally_

    return CallPlan(
        did=did,
        line_name=line.name,
        team=line.team,
        language=line.language,
        period=period,
        announcement=announcement,
        hops=tuple(hops),
        final=FinalAction(final),
        voicemail=VoicemailPolicy(
            max_duration_s=config.voicemail_max_duration_s,
            max_silence_s=config.voicemail_max_silence_s,
        ),
        agent_caller_id=config.trunk.caller_id,
        accept_timeout_s=line.accept_timeout or config.accept_timeout_s,
        line_prompt=line.line_prompt,
        recorded_notice=line.recorded_notice,
        early_dial=line.early_dial,
        announcement_mode=AnnouncementMode(line.announcement_mode),
        busy_agents=BusyAgents(line.busy_agents),
        recording=_recording(line),
        menu=menu_plan(line, plan_of) if with_routes else None,
        caller_routes=caller_route_plans(line, plan_of) if with_routes else (),
    )


def _recording(line: LineConfig) -> RecordingPolicy | None:
    if not line.record_calls or not line.recording_purpose:
        return None
    return RecordingPolicy(
        purpose=line.recording_purpose.strip(),
        agent_can_stop=line.agent_can_stop_recording,
        stop_keys=line.recording_stop_keys,
    )
