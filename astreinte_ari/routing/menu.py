"""Menus and caller routes: a call to one line runs another line's cascade.

Pure: the plans of the target lines are made with the dialled line's, at the same
instant (router.build_plan); choosing among them needs only the caller's number
(caller routes, when the call arrives) or key (the menu, after the announcement).
The call keeps the dialled line's number, name and team: reports and alerts count
it there; the target line gives whom to ring and what happens when nobody answers.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from astreinte_ari.routing.plan import CallerRoutePlan, CallPlan, MenuChoicePlan, MenuPlan

if TYPE_CHECKING:  # the fallback AGI imports this module: no pydantic while a caller waits
    from astreinte_ari.config.model import LineConfig

log = logging.getLogger(__name__)

DTMF_KEYS = frozenset("0123456789*#")
_MAX_CALLER = 32  # caller IDs are untrusted: nothing longer is compared
_E164 = re.compile(r"^\+\d{6,15}$")

PlanOfLine = Callable[[str], CallPlan | None]  # a target line's plan at the call's instant


def menu_plan(line: LineConfig, plan_of: PlanOfLine) -> MenuPlan | None:
    """The line's menu with each choice's plan; None without a menu. A choice whose
    line has no plan (a configuration built without the loader's checks) is left out,
    and so is the whole menu when that leaves its default out."""
    if line.menu is None:
        return None
    choices: list[MenuChoicePlan] = []
    for key, choice in line.menu.choices.items():
        target = plan_of(choice.line)
        if target is None:
            log.error("menu key %s of %s: line %s has no plan", key, line.name, choice.line)
            continue
        choices.append(MenuChoicePlan(key, choice.label, target))
    if not any(c.key == line.menu.default for c in choices):
        log.error("menu of %s left out: its default choice has no plan", line.name)
        return None
    return MenuPlan(line.menu.prompt, line.menu.timeout, line.menu.default, tuple(choices))


def caller_route_plans(line: LineConfig, plan_of: PlanOfLine) -> tuple[CallerRoutePlan, ...]:
    routes: list[CallerRoutePlan] = []
    for route in line.caller_routes:
        target = plan_of(route.line)
        if target is None:
            log.error(
                "caller route %s of %s: line %s has no plan", route.label, line.name, route.line
            )
            continue
        routes.append(CallerRoutePlan(route.label, tuple(route.callers), target))
    return tuple(routes)


def normalised_caller(number: str) -> str | None:
    """The caller's number as the configuration writes numbers (+33612345678), or
    None when it is not one: "+33 6 12..." and "0033612..." match, anything else
    (anonymous, national, junk) matches no caller route."""
    compact = re.sub(r"[\s.()-]", "", number[:_MAX_CALLER])
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if _E164.match(compact) else None


def continued_on(plan: CallPlan, target: CallPlan, why: str, *, early_dial: bool) -> CallPlan:
    """The dialled line's call going on with `target`'s cascade: whom to ring, how
    long, busy agents, what happens when nobody answers (voicemail or hangup)."""
    return dataclasses.replace(
        plan,
        hops=target.hops,
        final=target.final,
        voicemail=target.voicemail,
        accept_timeout_s=target.accept_timeout_s,
        line_prompt=target.line_prompt,  # agents hear which line they are rung for
        busy_agents=target.busy_agents,
        early_dial=early_dial,
        menu=None,
        caller_routes=(),
        routed=why,
    )


def apply_caller_route(plan: CallPlan, caller_number: str) -> CallPlan:
    """A caller listed in one of the line's caller routes skips the menu: the route's
    line cascade, at once (the dialled line's announcement still plays)."""
    if not plan.caller_routes:
        return plan
    caller = normalised_caller(caller_number)
    if caller is None:
        return dataclasses.replace(plan, caller_routes=())
    for route in plan.caller_routes:
        if caller in route.callers:
            why = f"caller route {route.label} → {route.plan.line_name} ({route.plan.did})"
            return continued_on(plan, route.plan, why, early_dial=plan.early_dial)
    return dataclasses.replace(plan, caller_routes=())


def _shown(key: str) -> str:
    return repr(key[:4])  # untrusted: quoted, bounded


def choose(menu: MenuPlan, key: str | None) -> tuple[MenuChoicePlan, str]:
    """The choice a key (None: none within the timeout) makes, and why, for the trail."""
    default = menu.default
    fallback = f"default {default.key} {default.label}"
    if key is None:
        return default, f"menu: no key within {menu.timeout_s} s → {fallback}"
    choice = menu.choice(key) if key in DTMF_KEYS else None
    if choice is None:
        return default, f"menu: key {_shown(key)} not offered → {fallback}"
    return choice, f"menu: key {key} → {choice.label} ({choice.plan.did})"


_CHOSEN = re.compile(r"^menu: key ([0-9*#]) → ")
_DEFAULTED = re.compile(r" → default ([0-9*#]) ")


def recorded_choice(menu: MenuPlan, reason: str | None) -> MenuChoicePlan | None:
    """The choice a caller made before a restart, read back from the trail's reason of
    the call's way out of the menu (written by `choose`); None when there is none or
    it names no choice of this menu (the configuration changed meanwhile)."""
    if not reason:
        return None
    found = _CHOSEN.match(reason) or _DEFAULTED.search(reason)
    return menu.choice(found.group(1)) if found else None


def resumed_choice(plan: CallPlan, menu: MenuPlan, reason: str | None) -> CallPlan:
    """The plan a call resumed after a restart runs: the line the caller chose before
    it (the trail says which), else the default choice."""
    choice = recorded_choice(menu, reason)
    if choice is not None:
        why = f"menu: resumed after a restart → key {choice.key} {choice.label}, as chosen"
    else:
        choice = menu.default
        why = f"menu: resumed after a restart → default {choice.key} {choice.label}"
    return continued_on(plan, choice.plan, why, early_dial=False)


def after_choice(plan: CallPlan, menu: MenuPlan, key: str | None) -> CallPlan:
    """The plan the call runs once the caller chose (or did not): the chosen line's
    cascade, rung at once (the announcement is over: no early dial)."""
    choice, why = choose(menu, key)
    return continued_on(plan, choice.plan, why, early_dial=False)
