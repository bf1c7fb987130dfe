"""Self-service rota changes: swaps and covers asked for by the agents (pure, no I/O).

- a cover ("I'll take Saturday"): the requester takes [start, end) from whoever holds
  it now (the counterpart, found from the schedule); a manager approves it;
- a swap: the counterpart takes the requester's [start, end) and, when the exchange
  is two-way, the requester takes the counterpart's [swap_start, swap_end); the
  counterpart consents, then a manager approves (`changes.manager_approval`, default
  true; false: the consent is enough). A manager may approve without the consent.
- nobody approves their own request, unless they are a manager of the team and the
  team allows it (`changes.self_approval`, default false).

An approved change becomes `Override` entries appended after the YAML's (so they win:
later entry wins). A change that would add an error-level labour-law finding
(daily_rest, weekly_rest, notice, double_booking) for the people involved is refused
with the rule named, when asked and again when approved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from astreinte_ari.config.model import AppConfig, TeamConfig
from astreinte_ari.config.rotas import Override
from astreinte_ari.schedule.labour import Finding, notice_findings, programme_findings
from astreinte_ari.schedule.rota import RotaError, shifts

Kind = Literal["swap", "cover"]
Status = Literal["requested", "approved", "refused", "cancelled"]
KINDS: tuple[str, ...] = ("swap", "cover")
STATUSES: tuple[str, ...] = ("requested", "approved", "refused", "cancelled")
LABOUR_RULES = ("daily_rest", "weekly_rest", "notice", "double_booking")
REASON_LEN = 500
# Rest rules look at whole days and weeks: look this far around the changed slots.
_CONTEXT = timedelta(days=8)


class ChangeRefused(Exception):
    """A change that cannot be made, and the rule that says so.

    `rule`: a labour rule (daily_rest, weekly_rest, notice, double_booking), or
    invalid (bad input), not_holder / no_shift / several_holders (the schedule does
    not match), permission (ChangeNotAllowed), state (not pending any more),
    not_found (ChangeNotFound)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"[{rule}] {message}")
        self.rule = rule
        self.message = message


class ChangeNotAllowed(ChangeRefused, PermissionError):
    """This actor may not do this (rule "permission"); also a PermissionError."""

    def __init__(self, message: str) -> None:
        super().__init__("permission", message)


class ChangeNotFound(ChangeRefused, LookupError):
    """No request with that id (rule "not_found"); also a LookupError."""

    def __init__(self, request_id: str) -> None:
        super().__init__("not_found", f"no change request {request_id!r}")


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    id: str
    team: str
    rota: str
    kind: Kind
    requester: str  # person id
    counterpart: str  # swap: the colleague; cover: who holds the slot now
    start: datetime  # UTC; cover: the slot taken; swap: the requester's slot given away
    end: datetime
    reason: str
    status: Status
    requested_at: datetime
    swap_start: datetime | None = None  # swap: the counterpart's slot taken in exchange
    swap_end: datetime | None = None
    consented_at: datetime | None = None  # swap: when the counterpart agreed
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str = ""

    @property
    def consented(self) -> bool:
        return self.consented_at is not None

    @property
    def pending(self) -> bool:
        return self.status == "requested"

    def overrides(self) -> tuple[Override, ...]:
        """The Override entries this change makes once approved."""
        note = f"web change {self.id}"
        if self.decided_by:
            note += f", approved by {self.decided_by}"
        reason = f"{note}: {self.reason}" if self.reason else note
        made = []
        if self.kind == "cover":
            made.append((self.requester, self.start, self.end))
        else:
            made.append((self.counterpart, self.start, self.end))
            if self.swap_start is not None and self.swap_end is not None:
                made.append((self.requester, self.swap_start, self.swap_end))
        return tuple(
            Override.model_validate(
                {"rota": self.rota, "person": person, "from": lo, "to": hi,
                 "reason": reason, "requested_by": self.requester}
            )
            for person, lo, hi in made
        )  # fmt: skip


# -- building a request ---------------------------------------------------------


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ChangeRefused("invalid", f"{what} must carry a time zone, got {value.isoformat()}")
    return value.astimezone(UTC)


def _holders(team: TeamConfig, rota: str, start: datetime, end: datetime) -> set[str]:
    return {s.person_id for s in shifts(team, rota, start, end)}


def new_request(
    team_name: str,
    team: TeamConfig,
    *,
    request_id: str,
    actor: str,
    rota: str,
    kind: str,
    start: datetime,
    end: datetime,
    now: datetime,
    counterpart: str | None = None,
    swap_start: datetime | None = None,
    swap_end: datetime | None = None,
    reason: str = "",
) -> ChangeRequest:
    """A checked request (status "requested"); `team` is the schedule in force
    (YAML + approved changes). Labour checks are separate: `labour_findings`."""
    if kind not in KINDS:
        raise ChangeRefused("invalid", f"kind must be swap or cover, not {kind!r}")
    if actor not in team.people:
        raise ChangeNotAllowed(f"{actor!r} is not a person of team {team_name}")
    if rota not in team.rotas:
        known = ", ".join(team.rotas) or "none"
        raise ChangeRefused("invalid", f"unknown rota {rota!r} (team {team_name} has: {known})")
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        raise ChangeRefused("invalid", "the end must be after the start")
    if end <= now:
        raise ChangeRefused("invalid", "that slot is already over")
    if counterpart is not None and counterpart not in team.people:
        raise ChangeRefused("invalid", f"unknown person {counterpart!r} in team {team_name}")
    if len(reason) > REASON_LEN:
        raise ChangeRefused("invalid", f"the reason is longer than {REASON_LEN} characters")
    try:
        holders = _holders(team, rota, start, end)
    except RotaError as exc:
        raise ChangeRefused("invalid", str(exc)) from None
    if not holders:
        raise ChangeRefused(
            "no_shift", f"nobody is on call in rota {rota!r} then: there is nothing to take"
        )
    span = None
    if kind == "cover":
        if swap_start is not None or swap_end is not None:
            raise ChangeRefused("invalid", "a cover takes one slot: no swap_start/swap_end")
        others = holders - {actor}
        if not others:
            raise ChangeRefused("not_holder", f"{actor} already holds rota {rota!r} then")
        if len(others) > 1:
            raise ChangeRefused(
                "several_holders",
                f"{', '.join(sorted(others))} hold rota {rota!r} then: ask for one slot at a time",
            )
        (holder,) = others
        if counterpart is not None and counterpart != holder:
            raise ChangeRefused(
                "not_holder", f"{counterpart} does not hold that slot ({holder} does)"
            )
        counterpart = holder
    else:
        if counterpart is None:
            raise ChangeRefused("invalid", "a swap needs the colleague to swap with")
        if counterpart == actor:
            raise ChangeRefused("invalid", "a swap is with someone else")
        if holders != {actor}:
            raise ChangeRefused(
                "not_holder", f"{actor} does not hold rota {rota!r} over all of that slot"
            )
        if (swap_start is None) != (swap_end is None):
            raise ChangeRefused("invalid", "give both swap_start and swap_end, or neither")
        if swap_start is not None and swap_end is not None:
            span = (_utc(swap_start, "swap_start"), _utc(swap_end, "swap_end"))
            if span[1] <= span[0]:
                raise ChangeRefused("invalid", "swap_end must be after swap_start")
            if span[0] < end and start < span[1]:
                raise ChangeRefused("invalid", "the two slots of a swap overlap")
            if _holders(team, rota, *span) != {counterpart}:
                raise ChangeRefused(
                    "not_holder",
                    f"{counterpart} does not hold rota {rota!r} over all of the slot taken in "
                    "exchange",
                )
    return ChangeRequest(
        id=request_id, team=team_name, rota=rota, kind=kind,  # type: ignore[arg-type]
        requester=actor, counterpart=counterpart, start=start, end=end,
        reason=reason.strip(), status="requested", requested_at=now,
        swap_start=span[0] if span else None, swap_end=span[1] if span else None,
    )  # fmt: skip


# -- decisions ------------------------------------------------------------------


def _pending(request: ChangeRequest) -> None:
    if request.status != "requested":
        raise ChangeRefused("state", f"change {request.id} is {request.status}, no longer pending")


def _check_manager(team: TeamConfig, request: ChangeRequest, actor: str) -> None:
    if actor not in team.managers:
        raise ChangeNotAllowed(f"{actor} is not a manager of team {request.team}")
    if actor == request.requester and not team.changes.self_approval:
        raise ChangeNotAllowed(
            f"{actor} asked for change {request.id}: another manager decides it "
            "(or set changes.self_approval: true)"
        )


def consent(team: TeamConfig, request: ChangeRequest, actor: str, now: datetime) -> ChangeRequest:
    """The swap's counterpart agrees; approved at once when no manager is needed.
    The caller re-runs the labour checks when the result is approved."""
    _pending(request)
    if request.kind != "swap":
        raise ChangeRefused("invalid", "a cover needs no consent, only a manager's approval")
    if actor != request.counterpart:
        raise ChangeNotAllowed(f"only {request.counterpart} can agree to change {request.id}")
    if request.consented:
        raise ChangeRefused("state", f"{actor} already agreed to change {request.id}")
    agreed = replace(request, consented_at=now)
    if team.changes.manager_approval:
        return agreed
    return replace(agreed, status="approved", decided_by=actor, decided_at=now)


def approve(
    team: TeamConfig, request: ChangeRequest, actor: str, *, as_manager: bool, now: datetime,
    note: str = "",
) -> ChangeRequest:  # fmt: skip
    """A manager's approval (with or without the swap's consent); a counterpart's
    approval of a swap is its consent. The caller re-runs the labour checks."""
    _pending(request)
    if not as_manager:
        if request.kind == "swap" and actor == request.counterpart:
            return consent(team, request, actor, now)
        raise ChangeNotAllowed(f"change {request.id} needs a manager of team {request.team}")
    _check_manager(team, request, actor)
    return replace(request, status="approved", decided_by=actor, decided_at=now, decision_note=note)


def refuse(
    team: TeamConfig, request: ChangeRequest, actor: str, *, as_manager: bool, now: datetime,
    note: str = "",
) -> ChangeRequest:  # fmt: skip
    """A manager, or the swap's counterpart, says no."""
    _pending(request)
    if as_manager:
        if actor not in team.managers:
            raise ChangeNotAllowed(f"{actor} is not a manager of team {request.team}")
    elif not (request.kind == "swap" and actor == request.counterpart):
        raise ChangeNotAllowed(f"only a manager or the colleague asked can refuse {request.id}")
    return replace(request, status="refused", decided_by=actor, decided_at=now, decision_note=note)


def cancel(request: ChangeRequest, actor: str, now: datetime) -> ChangeRequest:
    """The requester withdraws a pending request."""
    _pending(request)
    if actor != request.requester:
        raise ChangeNotAllowed(f"only {request.requester} can cancel change {request.id}")
    return replace(request, status="cancelled", decided_by=actor, decided_at=now)


def refused_by_labour(
    request: ChangeRequest, rule: str, message: str, now: datetime
) -> ChangeRequest:
    """Refused automatically at approval time: the rule is the decision's note."""
    return replace(request, status="refused", decided_by="system", decided_at=now,
                   decision_note=f"[{rule}] {message}")  # fmt: skip


# -- overrides and the configuration in force -------------------------------------


def approved_overrides(requests: Iterable[ChangeRequest]) -> tuple[Override, ...]:
    """Overrides of the approved requests, in approval order (a later one wins)."""
    approved = [r for r in requests if r.status == "approved"]
    approved.sort(key=lambda r: (r.decided_at or r.requested_at, r.id))
    return tuple(o for r in approved for o in r.overrides())


def with_overrides(team: TeamConfig, extra: Sequence[Override]) -> TeamConfig:
    """The team with `extra` after its YAML overrides; entries naming a rota or a
    person the team no longer has are left out (the YAML may have changed since)."""
    usable = tuple(o for o in extra if o.rota in team.rotas and o.person in team.people)
    if not usable:
        return team
    return team.model_copy(update={"overrides": (*team.overrides, *usable)})


def apply_changes(config: AppConfig, overrides: Mapping[str, Sequence[Override]]) -> AppConfig:
    """YAML + approved changes: what the router and the schedule use."""
    teams = {
        name: with_overrides(team, overrides.get(name, ())) for name, team in config.teams.items()
    }
    if all(teams[name] is team for name, team in config.teams.items()):
        return config
    return config.model_copy(update={"teams": teams})


# -- labour-law checks ------------------------------------------------------------


def _bounds(request: ChangeRequest) -> tuple[datetime, datetime]:
    lo = min(t for t in (request.start, request.swap_start) if t is not None)
    hi = max(t for t in (request.end, request.swap_end) if t is not None)
    return lo - _CONTEXT, hi + _CONTEXT


def _covered_by(finding: Finding, before: Sequence[Finding]) -> bool:
    return any(
        b.rule == finding.rule
        and b.person == finding.person
        and b.start <= finding.start
        and finding.end <= b.end
        for b in before
    )


def labour_findings(
    team: TeamConfig,
    approved: Sequence[Override],
    candidate: ChangeRequest,
    now: datetime,
) -> list[Finding]:
    """The error-level findings (daily_rest, weekly_rest, notice, double_booking) the
    candidate adds for the people it involves, over the YAML `team` (the candidate's
    team) plus the `approved` overrides; empty when the change is lawful."""
    base = with_overrides(team, approved)
    after = with_overrides(base, candidate.overrides())
    people = {candidate.requester, candidate.counterpart}
    start, end = _bounds(candidate)
    name = candidate.team
    before = programme_findings(name, base, start, end)
    found = [
        f
        for f in programme_findings(name, after, start, end)
        if f.rule in LABOUR_RULES and not _covered_by(f, before)
    ]
    if team.labour.notice.level != "off":
        found += notice_findings(name, after, base, now)
    return [f for f in found if f.level == "error" and f.person in people]


def check_labour(
    team: TeamConfig, approved: Sequence[Override], candidate: ChangeRequest, now: datetime
) -> None:
    """ChangeRefused naming the first rule the candidate breaks."""
    found = labour_findings(team, approved, candidate, now)
    if found:
        first = found[0]
        raise ChangeRefused(first.rule, first.describe(team.timezone or "UTC"))
