"""The MENU step of an inbound call: the caller's key chooses a line's cascade.

After the announcement (and the recording notice), the caller hears the menu
prompt in the line's language; the first key counts, pressed during the prompt
(barge-in) or within `timeout_s` after it. No key, or one not offered: the default
choice. The choice is one transition on the trail; the call then runs the chosen
line's plan (routing/menu.py). Nobody is rung before the choice: early dial waits
for it. A caller hanging up here is an ordinary abandoned call ("abandoned at menu").
"""

from __future__ import annotations

import logging

from astreinte_ari.callflow.conversation import quietly
from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.callflow.runtime import CallRuntime
from astreinte_ari.callflow.telephony import DtmfReceived, PlaybackFinished
from astreinte_ari.routing.menu import (
    after_choice,
    continued_on,
    recorded_choice,
    resumed_choice,
)
from astreinte_ari.routing.plan import CallPlan, MenuPlan

log = logging.getLogger("astreinte_ari.call")
MAX_PROMPT_S = 120.0  # a prompt that never reports its end is stopped


async def take_menu_choice(
    rt: CallRuntime,
    menu: MenuPlan,
    *,
    resumed: bool = False,
    hops_rung: bool = False,
    recorded: str | None = None,
) -> CallPlan:
    """Ask the caller and switch the call to the chosen line's plan; returns it (it is
    rt.plan from now on). `resumed`: a call taken over after a restart goes on with the
    choice the trail recorded (`recorded`: the reason written when the caller chose).
    With none on record and nobody rung yet (`hops_rung` False) the restart came before
    the choice, and any key pressed meanwhile was lost: the caller is asked again.
    With none on record but hops rung already, the choice was made and its record
    lost: the default line, rather than a second question in the middle of ringing."""
    plan, default = rt.plan, menu.default
    again = ""
    if resumed:
        if hops_rung or recorded_choice(menu, recorded) is not None:
            return _go_on(rt, resumed_choice(plan, menu, recorded))
        again = "asked again after a restart (no choice on record): "
    offered = ", ".join(f"{c.key} {c.label}" for c in menu.choices)
    rt.transition(
        CallState.MENU, f"{again}menu {menu.prompt}: {offered}; default {menu.default_key}"
    )
    if plan.test_call:
        # Nobody presses keys on a test call: the prompt is played (a sound that fails
        # fails the test), then the default choice, at once.
        await rt.play_and_wait(rt.caller_channel_id, menu.prompt)
        why = f"menu: test call → default {default.key} {default.label}"
        return _go_on(rt, continued_on(plan, default.plan, why, early_dial=False))
    return _go_on(rt, after_choice(plan, menu, await _first_key(rt, menu)))


def _go_on(rt: CallRuntime, chosen: CallPlan) -> CallPlan:
    """The choice on the trail (the transition to DIALING says which and why)."""
    rt.plan = chosen
    rt.transition(CallState.DIALING, chosen.routed or "menu")
    return chosen


async def _first_key(rt: CallRuntime, menu: MenuPlan) -> str | None:
    """The caller's first key during the prompt or within the timeout after it."""
    playback_id = rt.new_id("pb")
    uri = rt.sounds.uri(menu.prompt, rt.language)
    playing = await rt.port.play(rt.caller_channel_id, uri, playback_id, rt.language)
    deadline = rt.deadline_in(MAX_PROMPT_S if playing else menu.timeout_s)
    while True:
        event = await rt.next_event(deadline)
        if event is None:
            if not playing:
                return None
            await quietly(rt.port.stop_playback(playback_id))
            playing, deadline = False, rt.deadline_in(menu.timeout_s)
        elif isinstance(event, DtmfReceived) and event.channel_id == rt.caller_channel_id:
            if playing:  # barge-in: the caller knows already
                await quietly(rt.port.stop_playback(playback_id))
            return event.digit
        elif isinstance(event, PlaybackFinished) and event.playback_id == playback_id and playing:
            if event.failed:
                log.warning("call %s: menu prompt %s failed to play", rt.call_id[:8], uri)
                rt.failed_prompts.append(menu.prompt)
            playing, deadline = False, rt.deadline_in(menu.timeout_s)
