"""A ring-all hop: several people rung at once, the first to press 1 takes the call.

Each person's leg runs the ordinary hop (HopAttempt: ring, "press 1", accept)
in its own task, over a view of the call's runtime that only sees that leg's
events: one pump reads the call's queue and hands each event to the leg whose
object (channel, playback) it concerns. The first leg to accept wins; every
other leg is stopped at once and hung up, whether still ringing or answered
and hearing the prompt, and its hop ends "cancelled: another agent accepted".
Two keys pressed at nearly the same time: the leg that finished first wins
(the pump hands events over in the PBX's order), the other is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any, cast

from astreinte_ari.aio import within
from astreinte_ari.callflow.conversation import quietly
from astreinte_ari.callflow.engaged import record_skipped_hop
from astreinte_ari.callflow.hop import HopAttempt, HopResult
from astreinte_ari.callflow.outcomes import CallState, HopOutcome
from astreinte_ari.callflow.runtime import CallerGone, CallRuntime
from astreinte_ari.callflow.sessions import event_key
from astreinte_ari.callflow.telephony import ChannelEntered, Reconnected, TelephonyEvent
from astreinte_ari.routing.busy import BusyLookup, free_members
from astreinte_ari.routing.plan import Hop

log = logging.getLogger("astreinte_ari.call")

ANOTHER_ACCEPTED = "another agent accepted"
_TAKEN = (HopOutcome.ACCEPTED, HopOutcome.CONNECTED)


class Superseded(Exception):
    """Another leg of the same ring-all hop accepted first."""


class _Wake:
    """Queued to wake a leg waiting for events when it is stopped."""


class LegView:
    """The call's runtime as one leg of a ring-all hop sees it: the same call (plan,
    port, audit, ids), but only the events of this leg's own objects."""

    def __init__(self, rt: CallRuntime, routes: dict[str, LegView]) -> None:
        self._rt = rt
        self._routes = routes
        self.events: asyncio.Queue[TelephonyEvent | _Wake] = asyncio.Queue()
        self.stopped: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)  # port, audit, clock, plan, sounds, hangup_causes...

    def own(self, object_id: str) -> None:
        self._routes[object_id] = self
        self._rt.own(object_id)

    def new_id(self, kind: str) -> str:
        object_id = self._rt.new_id(kind)
        self._routes[object_id] = self
        return object_id

    def transition(self, to_state: CallState, reason: str) -> None:
        """The call's state follows its legs; a move the call cannot make (a second
        leg answering while the first hears the prompt) is only logged."""
        rt = self._rt
        if to_state in rt.machine.allowed[rt.state]:
            rt.transition(to_state, reason)
        else:
            log.info("call %s: %s (the call stays %s)", rt.call_id[:8], reason, rt.state)

    def stop(self, why: BaseException) -> None:
        if self.stopped is None:
            self.stopped = why
            self.events.put_nowait(_Wake())

    async def ensure_caller_present(self) -> None:
        if self.stopped is not None:  # the hop checked with the PBX before ringing
            raise self.stopped

    async def next_event(self, deadline: float | None) -> TelephonyEvent | None:
        loop = asyncio.get_running_loop()
        while True:
            if self.stopped is not None:
                raise self.stopped
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                if timeout == 0:
                    item = self.events.get_nowait()
                else:
                    item = await within(self.events.get(), timeout)
            except (TimeoutError, asyncio.QueueEmpty):
                if self.stopped is not None:
                    raise self.stopped from None
                return None
            if not isinstance(item, _Wake):
                return item

    def leftovers(self) -> list[TelephonyEvent]:
        items = []
        while not self.events.empty():
            item = self.events.get_nowait()
            if not isinstance(item, _Wake):
                items.append(item)
        return items


class RingAll:
    """One ring-all hop of an inbound call."""

    def __init__(
        self,
        rt: CallRuntime,
        seq: int,
        hop: Hop,
        busy_with: BusyLookup,
        rung_last: bool = False,
    ) -> None:
        self.rt = rt
        self.seq = seq
        self.hop = hop
        self._busy_with = busy_with
        self._rung_last = rung_last
        self._routes: dict[str, LegView] = {}
        self._gone: CallerGone | None = None
        self.started = False  # a leg is on the trail
        # Whether the caller still hears the announcement (early dial): each leg's trail.
        self.during_announcement: Callable[[], bool] = lambda: False

    def describe(self) -> str:
        return f"hop {self.seq}: {self.hop.label} (ring all: {', '.join(self._people())})"

    def _people(self) -> list[str]:
        return [m.person_id for m in self.hop.members]

    async def run(self) -> tuple[HopAttempt, HopResult] | None:
        """Ring every free person at once; the winner's accepted leg, or None."""
        rt = self.rt
        await rt.ensure_caller_present()  # never ring anyone for a caller who left
        policy = rt.plan.busy_agents
        ring, skipped = free_members(self.hop, self._busy_with, policy, self._rung_last)
        for member, holder in skipped:
            reason = f"busy: on call {holder[:8]} (not rung)"
            record_skipped_hop(rt, self.seq, member, str(uuid.uuid4()), reason)
        if not ring:
            return None
        legs = [self._leg_for(member) for member in ring]
        self.started = True
        pump = asyncio.ensure_future(self._pump())
        finished: list[asyncio.Future[HopResult | None]] = []
        changed = asyncio.Event()

        def done(task: asyncio.Future[HopResult | None]) -> None:
            finished.append(task)  # in the order the legs ended
            changed.set()

        tasks: dict[asyncio.Future[HopResult | None], tuple[HopAttempt, LegView]] = {}
        for attempt, view in legs:
            task = asyncio.ensure_future(self._run_leg(attempt))
            task.add_done_callback(done)
            tasks[task] = (attempt, view)
        winner: tuple[HopAttempt, HopResult] | None = None
        winner_view: LegView | None = None
        try:
            seen = 0
            while seen < len(tasks):
                await changed.wait()
                changed.clear()
                while seen < len(finished):
                    task = finished[seen]
                    seen += 1
                    attempt, view = tasks[task]
                    result = task.result()
                    if result is None or result.outcome not in _TAKEN:
                        continue
                    if winner is None and self._gone is None:
                        winner, winner_view = (attempt, result), view
                        log.info("call %s: %s accepted", rt.call_id[:8], attempt.describe())
                        for _, other in tasks.values():
                            if other is not view:
                                other.stop(Superseded())
                    else:  # pressed 1 too, a moment later: hung up like the others
                        await quietly(rt.port.hangup(attempt.agent_id))
                        why = "caller hung up" if self._gone is not None else ANOTHER_ACCEPTED
                        attempt.end_cancelled(why)
        finally:
            for task in tasks:
                task.cancel()  # only still running if this hop itself is cancelled
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            if winner_view is not None:
                self._give_back(winner_view.leftovers())
        if self._gone is not None:
            if winner is not None:
                await quietly(rt.port.hangup(winner[0].agent_id))
                winner[0].end_cancelled("caller hung up")
            raise self._gone
        return winner

    def _leg_for(self, member: Hop) -> tuple[HopAttempt, LegView]:
        view = LegView(self.rt, self._routes)
        attempt = HopAttempt(cast(CallRuntime, view), self.seq, member)
        attempt.during_announcement = lambda: self.during_announcement()
        return attempt, view

    async def _run_leg(self, attempt: HopAttempt) -> HopResult | None:
        try:
            return await attempt.run()
        except Superseded:
            await quietly(self.rt.port.hangup(attempt.agent_id))
            attempt.end_cancelled(ANOTHER_ACCEPTED)
        except CallerGone:
            pass  # the hop recorded it (cancelled: caller hung up) and hung up its leg
        return None

    async def _pump(self) -> None:
        """The call's events, each to the leg it concerns (in the PBX's order)."""
        rt = self.rt
        try:
            while True:
                event = await rt.next_event(None)
                if event is None:
                    continue
                if isinstance(event, Reconnected):
                    for view in set(self._routes.values()):
                        view.events.put_nowait(event)
                    continue
                key = event.channel.id if isinstance(event, ChannelEntered) else event_key(event)
                view = self._routes.get(key) if key is not None else None
                if view is not None:
                    view.events.put_nowait(event)
        except CallerGone as gone:
            self._gone = gone
            for view in set(self._routes.values()):
                view.stop(gone)

    def _give_back(self, events: list[TelephonyEvent]) -> None:
        """Events of the winner's leg the pump took but the leg did not read: back to
        the call's queue, before anything that came after them."""
        if not events:
            return
        queue = self.rt.events
        later = []
        while not queue.empty():
            later.append(queue.get_nowait())
        for event in [*events, *later]:
            queue.put_nowait(event)
