"""The on-call service: turns PBX events into one call flow per inbound call.

Dispatch never waits on the PBX: an event is routed to the queue of the call
it concerns (in order within that call), and everything that talks to ARI
runs in that call's own task. One slow or failing request for one call never
delays the events of another.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta

from astreinte_ari.aio import within
from astreinte_ari.callflow.call import CallFlow
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.engaged import EngagedTargets
from astreinte_ari.callflow.identity import (
    AGENT_LEG,
    OWN_PREFIX,
    call_id_for_channel,
    is_originated_leg,
)
from astreinte_ari.callflow.reconcile import PbxRecords, Reconciler, ended_meanwhile
from astreinte_ari.callflow.recovery import ResumedCallFlow, ResumePoint
from astreinte_ari.callflow.runtime import (
    AuditSink,
    CallRuntime,
    LegRuntime,
    S,
    SoundLibrary,
    StateMachine,
)
from astreinte_ari.callflow.sessions import Binder, EventRoutes, event_key
from astreinte_ari.callflow.telephony import (
    AppReplaced,
    CallResync,
    Channel,
    ChannelEntered,
    Resynced,
    TakeResult,
    TelephonyError,
    TelephonyEvent,
    TelephonyPort,
)
from astreinte_ari.callflow.unknown_line import play_then_hangup, record_unknown_line
from astreinte_ari.callflow.voicemail import VoicemailSink
from astreinte_ari.routing.menu import apply_caller_route
from astreinte_ari.routing.plan import CallPlan
from astreinte_ari.routing.ratelimit import CallerRateLimiter
from astreinte_ari.routing.selftest import TEST_CALLER_NAME

log = logging.getLogger(__name__)
_RECORDS_LOOKBACK = timedelta(hours=6)

PlanBuilder = Callable[[str, datetime], CallPlan | None]
ResumeLookup = Callable[[str], Awaitable[ResumePoint | None]]
CallListener = Callable[[CallClosed], None]
DEFAULT_LANGUAGE = "fr"


class OnCallService:
    def __init__(
        self,
        *,
        port: TelephonyPort,
        audit: AuditSink,
        sounds: SoundLibrary,
        voicemail: VoicemailSink,
        plan_for: PlanBuilder,
        clock: Callable[[], datetime],
        call_listeners: tuple[CallListener, ...] = (),
        app: str = "astreinte",
        resume_lookup: ResumeLookup | None = None,
        rate_limiter: CallerRateLimiter | None = None,
        max_parallel_cascades: int | None = None,
        pbx_records: PbxRecords | None = None,
        reconciler: Reconciler | None = None,
    ) -> None:
        self._admission = (
            asyncio.Semaphore(max_parallel_cascades) if max_parallel_cascades else None
        )
        self._rate_limiter = rate_limiter
        self._app = app
        self._resume_lookup = resume_lookup
        self._records = pbx_records
        self.reconciler = reconciler
        self.draining = False  # set on SIGTERM: new calls go to the dialplan fallback
        self._port = port
        self._call_listeners = list(call_listeners)
        self._audit = audit
        self._sounds = sounds
        self._voicemail = voicemail
        self._plan_for = plan_for
        self._clock = clock
        self._routes = EventRoutes()  # whose queue each PBX object's events go to
        self._engaged = EngagedTargets()  # phones held by calls in progress (busy agents)
        self._expected_tests: dict[str, CallPlan] = {}  # test call channel -> its plan
        self._tasks: set[asyncio.Task[None]] = set()
        self.fatal = asyncio.Event()  # set when another client took our app name
        # Set once connected and resynced with the PBX (cleared when the connection
        # drops): outbound calls (voice alerts) wait for it instead of failing.
        self.ready = asyncio.Event()

    async def wait_ready(self, timeout: float) -> bool:
        """True once the PBX is connected and resynced; False after `timeout` s."""
        try:
            await within(self.ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def active_calls(self) -> int:
        return len(self._routes.call_ids)

    @property
    def live_call_ids(self) -> Collection[str]:
        return self._routes.call_ids

    def add_call_listener(self, listener: CallListener) -> None:
        """Called (on the event loop) with a summary of every call that ends."""
        self._call_listeners.append(listener)

    def outbound_leg(
        self, *, call_id: str, channel_id: str, language: str, machine: StateMachine[S]
    ) -> contextlib.AbstractContextManager[LegRuntime[S]]:
        """The runtime of an outbound call (a voice alert) whose first leg will be
        `channel_id`: the events of every object it creates reach it until closed."""

        def make(bind: Binder) -> LegRuntime[S]:
            return LegRuntime(
                call_id=call_id,
                caller_channel_id=channel_id,
                language=language,
                machine=machine,
                port=self._port,
                audit=self._audit,
                sounds=self._sounds,
                clock=self._clock,
                bind=bind,
            )

        return self._routes.leg(channel_id, make)

    async def handle(self, event: TelephonyEvent) -> None:
        """Route one event. Never awaits the PBX: per-call work runs in its own task."""
        if isinstance(event, ChannelEntered):
            channel = event.channel
            if channel.id in self._routes:
                self._routes.route(channel.id, event)
            elif channel.id in self._expected_tests:  # our own test call (selftest.py)
                self._new_call(channel, event.args, self._expected_tests.pop(channel.id))
            elif channel.id.startswith(OWN_PREFIX) or event.args[:1] == ("agent",):
                # A leg of ours whose flow has ended (answered too late): release it.
                log.info("stray leg %s hung up", channel.id)
                self._spawn(self._port.hangup(channel.id))
            else:
                self._new_call(channel, event.args)
        elif isinstance(event, Resynced):
            self._spawn(self._reconcile(event))
        elif isinstance(event, AppReplaced):
            log.critical(
                "another ARI client took over the application %r (a second service on "
                "this PBX?): stopping",
                self._app,
            )
            self.fatal.set()
        else:
            key = event_key(event)
            if key is not None:
                self._routes.route(key, event)

    def expect_test_call(self, channel_id: str, plan: CallPlan) -> None:
        """The channel `channel_id` the service is about to send into the dialplan is
        a test call: it runs `plan` (a test plan) instead of the DID's. The id is the
        service's own choice (ARI originate), never a caller's."""
        self._expected_tests[channel_id] = plan

    def forget_test_call(self, channel_id: str) -> bool:
        """True if the test call never entered the application (it is forgotten)."""
        return self._expected_tests.pop(channel_id, None) is not None

    def _new_call(
        self, caller: Channel, args: tuple[str, ...], test_plan: CallPlan | None = None
    ) -> None:
        """A caller entered the application: on record first, then its own task."""
        call_id = call_id_for_channel(caller.id)
        did = args[0] if args else caller.exten
        plan = self._plan(did) if test_plan is None else test_plan
        if plan is None:
            self._refuse_unknown(call_id, caller, did)
            return
        if test_plan is not None:  # our own test call: never rate limited
            caller = dataclasses.replace(caller, caller_name=TEST_CALLER_NAME)
        else:  # a listed caller goes to its route's line (the number is only compared)
            plan = apply_caller_route(plan, caller.caller_number)
        if test_plan is None and self._rate_limiter is not None:
            plan = self._rate_limiter.apply(plan, caller.caller_number, self._clock())
        runtime = self._runtime(call_id, caller, plan)
        flow = CallFlow(runtime, caller, self._voicemail, self._admission, self._engaged)
        flow.record_start()  # journalled before any request to the PBX can fail
        self._spawn(self._run_flow(call_id, flow, flow.run(draining=self.draining)))

    def _plan(self, did: str) -> CallPlan | None:
        try:
            return self._plan_for(did, self._clock())
        except Exception:
            log.exception("cannot build a plan for DID %r", did)
            return None

    def _runtime(self, call_id: str, caller: Channel, plan: CallPlan) -> CallRuntime:
        def make(bind: Binder) -> CallRuntime:
            return CallRuntime(
                call_id=call_id,
                caller_channel_id=caller.id,
                plan=plan,
                port=self._port,
                audit=self._audit,
                sounds=self._sounds,
                clock=self._clock,
                bind=bind,
            )

        runtime = self._routes.add_call(call_id, caller.id, make)
        log.info(
            "call %s: line %s (%s), %d hop(s), channel %s",
            call_id[:8],
            plan.line_name,
            plan.period,
            len(plan.hops),
            caller.id,
        )
        return runtime

    async def _resume(self, caller: Channel, bridged: tuple[str, str] | None) -> None:
        """A caller found on the PBX after a restart: take it back where it was."""
        call_id = call_id_for_channel(caller.id)
        if call_id in self._routes.call_ids:
            return
        did = caller.stasis_args[0] if caller.stasis_args else caller.exten
        plan = self._plan(did)
        if plan is None:
            self._refuse_unknown(call_id, caller, did)
            return
        plan = apply_caller_route(plan, caller.caller_number)  # as when it arrived
        runtime = self._runtime(call_id, caller, plan)
        try:
            taken = await self._port.take_call(caller.id)
        except TelephonyError:
            log.exception("could not disarm the dialplan watchdog of %s", caller.id)
            taken = TakeResult.TAKEN
        if taken is not TakeResult.TAKEN:
            self._routes.release_call(call_id)  # left meanwhile: the sweep or the fallback has it
            return
        point = await self._lookup(caller.id)
        flow = ResumedCallFlow(runtime, caller, self._voicemail, engaged=self._engaged, point=point)
        log.info("call %s: resumed after a restart", call_id[:8])
        if bridged is not None:
            for object_id in bridged:
                runtime.own(object_id)
            await self._run_flow(call_id, flow, flow.resume_bridged(*bridged))
        else:
            await self._run_flow(call_id, flow, flow.resume_waiting())

    async def _run_flow(self, call_id: str, flow: CallFlow, body: Awaitable[None]) -> None:
        try:
            await body
        finally:
            self._routes.release_call(call_id)
        if flow.closed is not None:
            self.announce_closed(flow.closed)

    def announce_closed(self, closed: CallClosed) -> None:
        """Tell alerts and metrics a call ended (also for calls the fallback handled)."""
        for listener in self._call_listeners:
            try:
                listener(closed)
            except Exception:
                log.exception("call listener failed for call %s", closed.call_id[:8])

    def _refuse_unknown(self, call_id: str, caller: Channel, did: str) -> None:
        record_unknown_line(self._audit, call_id, caller, did, self._clock())
        media = self._sounds.uri("astreinte-no-one", DEFAULT_LANGUAGE)
        self._spawn(play_then_hangup(self._port, self._routes, caller.id, media))

    async def _reconcile(self, snapshot: Resynced) -> None:
        """After a (re)connection: events sent meanwhile are lost, so compare."""
        present = {c.id: c for c in snapshot.channels}
        await self._resync_live(present)
        bridge_of = {cid: b for b in snapshot.bridges for cid in b.channel_ids}
        adopted: set[str] = set()
        resumes: list[Awaitable[None]] = []
        for caller in snapshot.channels:
            if caller.stasis_app != self._app or caller.id in self._routes:
                continue
            if caller.id.startswith(OWN_PREFIX) or caller.stasis_args[:1] == ("agent",):
                continue
            bridge = bridge_of.get(caller.id)
            agents = [c for c in (bridge.channel_ids if bridge else ()) if c in present]
            agents = [c for c in agents if c.startswith(AGENT_LEG)]
            bridged = (agents[0], bridge.id) if bridge is not None and agents else None
            if bridged is not None:
                adopted.update(bridged)
            resumes.append(self._resume(caller, bridged))
        for channel in snapshot.channels:
            # Legs of an earlier process (answered or still ringing), nobody's now.
            leftover = channel.id not in self._routes and channel.id not in adopted
            if is_originated_leg(channel.id) and leftover:
                log.warning("stray leg %s from an earlier run hung up", channel.id)
                self._spawn(self._port.hangup(channel.id))
        for resume in resumes:
            self._spawn(resume)
        self.ready.set()
        await self.sweep(set(present))

    async def _resync_live(self, present: dict[str, Channel]) -> None:
        """Tell each call in progress what the PBX holds now (and what ended)."""
        owners = self._routes.channels_by_consumer()
        gone = {cid for _, ids in owners for cid in ids if cid not in present}
        since = self._clock() - _RECORDS_LOOKBACK
        ended = await ended_meanwhile(self._records, gone, since)
        for owner, ids in owners:
            endings = tuple(ended[cid] for cid in ids if cid in gone)
            if isinstance(owner, LegRuntime):  # inbound calls and outbound call flows
                in_app = tuple(
                    present[cid]
                    for cid in ids
                    if cid in present and present[cid].stasis_app == self._app
                )
                owner.events.put_nowait(CallResync(in_app, endings))
            else:
                for ending in endings:
                    owner.events.put_nowait(ending)

    async def sweep(self, present: Collection[str] | None = None) -> None:
        """Close the open calls of the trail that nobody handles any more."""
        if self.reconciler is None:
            return
        try:
            if present is None:
                present = await self._port.channel_ids()
            await self.reconciler.sweep(present, self._routes.call_ids)
        except Exception as exc:
            # Database down or ARI cut: the next gap or the periodic sweep retries.
            text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            log.warning("reconciliation with the PBX deferred: %s", text)

    async def _lookup(self, channel_id: str) -> ResumePoint | None:
        if self._resume_lookup is None:
            return None
        try:
            return await within(self._resume_lookup(channel_id), 3.0)
        except Exception:
            # Database down: the call still goes on (see ResumedCallFlow).
            log.exception("cannot read the audit trail to resume channel %s", channel_id)
            return None

    def _spawn(self, coro: Awaitable[object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[object]) -> None:
        self._tasks.discard(task)  # type: ignore[arg-type]
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("task failed: %r", exc, exc_info=exc)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in progress (graceful stop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._routes.call_ids and loop.time() < deadline:
            await asyncio.sleep(0.2)
        return not self._routes.call_ids
