"""An accepted hop becomes a conversation: bridge the caller and the agent, record
it where the line says so, and wait until one of them hangs up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.callflow.audit_events import CallAnswered
from astreinte_ari.callflow.conversation import Ending, end_test_call, quietly, until_hangup
from astreinte_ari.callflow.hop import HopAttempt
from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.callflow.recording import ConversationRecorder
from astreinte_ari.callflow.runtime import CallRuntime


@dataclass(frozen=True, slots=True)
class Talked:
    answered_at: datetime
    end: Ending

    @property
    def seconds(self) -> float:
        return round(max(0.0, (self.end.at - self.answered_at).total_seconds()), 1)


async def bridge_and_talk(
    rt: CallRuntime,
    hop: HopAttempt,
    *,
    prompt: str | None,
    agent_on_hold: bool,
    recorder: ConversationRecorder | None,
    stop_ringback: Callable[[], Awaitable[None]],
    on_bridged: Callable[[], None],
) -> Talked | None:
    """Bridge the caller and the agent until one hangs up; None if the agent left at
    the very moment of bridging (the hop is ended; the cascade goes on)."""
    agent_id = hop.agent_id
    bridge_id = rt.new_id("bridge")
    # Independent objects (the agent's prompt or hold, the caller's ringback, a new
    # bridge): one round trip of wall time instead of three before the bridging.
    await asyncio.gather(
        rt.port.stop_playback(prompt) if prompt else asyncio.sleep(0),
        quietly(rt.port.stop_hold(agent_id)) if agent_on_hold else asyncio.sleep(0),
        stop_ringback(),
        rt.port.create_bridge(bridge_id, dtmf_events=bool(recorder and recorder.needs_dtmf)),
    )
    try:
        if not await rt.port.add_to_bridge(bridge_id, (rt.caller_channel_id, agent_id)):
            await rt.ensure_caller_present()  # raises if it was the caller who left
            await quietly(rt.port.destroy_bridge(bridge_id))
            await quietly(rt.port.hangup(agent_id))
            hop.end_left_before_bridge()
            return None
        rt.transition(CallState.BRIDGED, f"{hop.describe()} accepted")
        answered_at = rt.clock()
        rt.audit.emit(
            CallAnswered(
                call_id=rt.call_id, hop_id=hop.hop_id, person_id=hop.hop.person_id, at=answered_at
            )
        )
    except BaseException:  # from here on, until_hangup tears the bridge down
        await quietly(rt.port.destroy_bridge(bridge_id))
        raise
    rt.caller_may_leave = True
    on_bridged()
    if rt.plan.test_call:  # the path is proven: nobody to talk to (selftest.py)
        end = await end_test_call(rt, agent_id, bridge_id)
    else:
        if recorder is not None:
            await recorder.start()
        end = await until_hangup(rt, agent_id, bridge_id, recorder)
        if recorder is not None:
            await recorder.finish()  # before the ending: the trail has the file first
    hop.end_after_talk(end.cause, end.cause_text)
    return Talked(answered_at, end)
