"""The self-service changes service: what the CLI and the web pages call.

`RotaChanges` ties the pure rules (schedule/changes.py) to a store (the database,
injected by compose.py) and to the configuration in force. Every refusal is a
`ChangeRefused` (.rule, .message): labour rules, bad input ("invalid"), the schedule
("not_holder", "no_shift", "several_holders"), a request no longer pending ("state"),
an unknown id (`ChangeNotFound`, rule "not_found", also a LookupError) and a
permission problem (`ChangeNotAllowed`, rule "permission", also a PermissionError).

Who is a manager is the caller's to say (`as_manager`), from `teams.<t>.managers`; it
is checked against that list again here, so a caller's mistake cannot approve.
Methods are synchronous (SQLAlchemy); an async caller runs them in a thread.

`keep_changes_applied` keeps the service's configuration = YAML + approved changes,
reading the database every `changes_refresh_seconds` (changes approved elsewhere).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from astreinte_ari.config.model import AppConfig, TeamConfig
from astreinte_ari.config.rotas import Override
from astreinte_ari.schedule import changes
from astreinte_ari.schedule.changes import ChangeRefused, ChangeRequest

log = logging.getLogger(__name__)

TeamOverrides = Mapping[str, tuple[Override, ...]]


class ChangeStore(Protocol):
    def add(self, request: ChangeRequest, *, actor: str) -> None: ...

    def update(
        self, before: ChangeRequest, after: ChangeRequest, *, actor: str, step: str
    ) -> None: ...

    def get(self, request_id: str) -> ChangeRequest: ...

    def list(
        self, *, team: str | None = None, person: str | None = None, status: str | None = None
    ) -> list[ChangeRequest]: ...


def new_change_id() -> str:
    return uuid.uuid4().hex[:12]


class RotaChanges:
    """Request, agree to, approve, refuse, cancel and list swaps and covers."""

    def __init__(
        self,
        store: ChangeStore,
        config: Callable[[], AppConfig],
        clock: Callable[[], datetime],
        *,
        on_approved: Callable[[], None] | None = None,
        new_id: Callable[[], str] = new_change_id,
    ) -> None:
        self.store = store
        self.config = config  # the YAML as loaded, without the approved changes
        self.clock = clock
        self.on_approved = on_approved  # the service applies the change at once
        self.new_id = new_id

    def _team(self, name: str) -> TeamConfig:
        config = self.config()
        team = config.teams.get(name)
        if team is None:
            known = ", ".join(config.teams) or "none"
            raise ChangeRefused("invalid", f"unknown team {name!r} (teams: {known})")
        return team

    def request(
        self,
        *,
        actor: str,
        team: str,
        rota: str,
        kind: str,
        start: datetime,
        end: datetime,
        counterpart: str | None = None,
        swap_start: datetime | None = None,
        swap_end: datetime | None = None,
        reason: str = "",
    ) -> ChangeRequest:
        yaml_team = self._team(team)
        approved = self.overrides(team)
        now = self.clock()
        request = changes.new_request(
            team, changes.with_overrides(yaml_team, approved),
            request_id=self.new_id(), actor=actor, rota=rota, kind=kind, start=start, end=end,
            now=now, counterpart=counterpart, swap_start=swap_start, swap_end=swap_end,
            reason=reason,
        )  # fmt: skip
        changes.check_labour(yaml_team, approved, request, now)
        self.store.add(request, actor=actor)
        return request

    def consent(self, request_id: str, *, actor: str) -> ChangeRequest:
        before = self.store.get(request_id)
        after = changes.consent(self._team(before.team), before, actor, self.clock())
        return self._store(before, after, actor)

    def approve(
        self, request_id: str, *, actor: str, as_manager: bool, note: str = ""
    ) -> ChangeRequest:
        before = self.store.get(request_id)
        team = self._team(before.team)
        after = changes.approve(
            team, before, actor, as_manager=as_manager, now=self.clock(), note=note
        )
        return self._store(before, after, actor)

    def refuse(
        self, request_id: str, *, actor: str, as_manager: bool, note: str = ""
    ) -> ChangeRequest:
        before = self.store.get(request_id)
        team = self._team(before.team)
        after = changes.refuse(
            team, before, actor, as_manager=as_manager, now=self.clock(), note=note
        )
        self.store.update(before, after, actor=actor, step="refused")
        return after

    def cancel(self, request_id: str, *, actor: str) -> ChangeRequest:
        before = self.store.get(request_id)
        after = changes.cancel(before, actor, self.clock())
        self.store.update(before, after, actor=actor, step="cancelled")
        return after

    def list(
        self, *, team: str | None = None, person: str | None = None, status: str | None = None
    ) -> list[ChangeRequest]:
        if status is not None and status not in changes.STATUSES:
            raise ChangeRefused("invalid", f"status must be one of {', '.join(changes.STATUSES)}")
        return self.store.list(team=team, person=person, status=status)

    def overrides(self, team: str) -> tuple[Override, ...]:
        """The approved changes of `team`, as Override entries (approval order)."""
        return changes.approved_overrides(self.store.list(team=team, status="approved"))

    def _store(self, before: ChangeRequest, after: ChangeRequest, actor: str) -> ChangeRequest:
        """Consent and approval: the agreement first, then (if approved) the approval,
        which the labour rules may still turn into a refusal."""
        if after.consented and not before.consented:
            agreed = after if after.status == "requested" else _undecided(after)
            self.store.update(before, agreed, actor=actor, step="consented")
            before = agreed
        if after.status != "approved":
            return before
        yaml_team = self._team(after.team)
        now = self.clock()
        try:
            changes.check_labour(yaml_team, self.overrides(after.team), after, now)
        except ChangeRefused as exc:
            refused = changes.refused_by_labour(before, exc.rule, exc.message, now)
            self.store.update(before, refused, actor="system", step="refused")
            raise
        self.store.update(before, after, actor=actor, step="approved")
        if self.on_approved is not None:
            try:
                self.on_approved()
            except Exception:  # approved and stored all the same: the next refresh applies it
                log.exception("change %s approved but not applied at once", after.id)
        return after


def _undecided(request: ChangeRequest) -> ChangeRequest:
    return replace(request, status="requested", decided_by=None, decided_at=None)


def overrides_by_team(requests: list[ChangeRequest]) -> dict[str, tuple[Override, ...]]:
    """Every approved request as Override entries, per team."""
    grouped: dict[str, list[ChangeRequest]] = defaultdict(list)
    for request in requests:
        grouped[request.team].append(request)
    return {team: changes.approved_overrides(items) for team, items in grouped.items()}


class ChangeOverlay:
    """The configuration in force = the YAML + the approved changes; the YAML and
    the changes are replaced separately (watcher, poller), `current` follows both."""

    def __init__(self, config: AppConfig) -> None:
        self.yaml = config
        self.changes: TeamOverrides = {}
        self.current = config

    def use_yaml(self, config: AppConfig) -> None:
        self.yaml = config
        self.current = changes.apply_changes(config, self.changes)

    def use_changes(self, overrides: TeamOverrides) -> bool:
        """True when the changes differ from the ones applied."""
        if dict(overrides) == dict(self.changes):
            return False
        self.changes = dict(overrides)
        self.current = changes.apply_changes(self.yaml, self.changes)
        return True


async def keep_changes_applied(
    overlay: ChangeOverlay,
    read: Callable[[], TeamOverrides],
    every: Callable[[], float],
    on_applied: Callable[[], object] | None = None,
) -> None:
    """Read the approved changes every `every()` seconds (another process or node
    may approve one); while the database is away the last ones read stay in force,
    with one warning when it goes and one line when it is back."""
    failing = False
    followed = overlay.changes
    while True:
        try:
            found = await asyncio.to_thread(read)
        except Exception as exc:
            if not failing:
                log.warning("approved rota changes not readable (%s): keeping the last ones", exc)
            failing = True
        else:
            if failing:
                log.info("approved rota changes readable again")
            failing = False
            if overlay.use_changes(found):
                count = sum(len(v) for v in found.values())
                log.info("approved rota changes in force: %d override(s)", count)
        # Also what an in-process approval applied at once (RotaChanges.on_approved).
        if overlay.changes is not followed and on_applied is not None:
            followed = overlay.changes
            result = on_applied()
            if asyncio.iscoroutine(result):
                await result
        await asyncio.sleep(every())
