"""The on-call service: turns PBX events into one call flow per inbound call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from astreinte_ari.callflow.audit_events import CallEnded, CallStarted
from astreinte_ari.callflow.call import CallClosed, CallFlow
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.callflow.recovery import ResumedCallFlow, ResumePoint
from astreinte_ari.callflow.runtime import AuditSink, CallRuntime, SoundLibrary
from astreinte_ari.callflow.telephony import (
    AppReplaced,
    Channel,
    ChannelEntered,
    ChannelHungUp,
    ChannelLeft,
    ChannelRinging,
    DtmfReceived,
    HangupRequested,
    PlaybackFinished,
    RecordingFinished,
    Resynced,
    TelephonyError,
    TelephonyEvent,
    TelephonyPort,
)
from astreinte_ari.callflow.voicemail import VoicemailSink
from astreinte_ari.routing.plan import CallPlan
from astreinte_ari.routing.ratelimit import CallerRateLimiter, limited_plan

log = logging.getLogger(__name__)

PlanBuilder = Callable[[str, datetime], CallPlan | None]
ResumeLookup = Callable[[str], Awaitable[ResumePoint | None]]
FALLBACK_CONTEXT = ("astreinte-fallback", "s")
CallListener = Callable[[CallClosed], None]
AGENT_PREFIX = "astreinte-agent-"
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
    ) -> None:
        self._admission = (
            asyncio.Semaphore(max_parallel_cascades) if max_parallel_cascades else None
        )
        self._rate_limiter = rate_limiter
        self._app = app
        self._resume_lookup = resume_lookup
        self.draining = False  # set on SIGTERM: new calls go to the dialplan fallback
        self._port = port
        self._call_listeners = list(call_listeners)
        self._audit = audit
        self._sounds = sounds
        self._voicemail = voicemail
        self._plan_for = plan_for
        self._clock = clock
        # channel/playback/recording id -> whoever consumes its events
        self._owner: dict[str, CallRuntime | EventSession] = {}
        self._keys: dict[str, list[str]] = {}  # call id -> ids it owns
        self._tasks: set[asyncio.Task[None]] = set()
        self.fatal = asyncio.Event()  # set when another client took our app name

    @property
    def active_calls(self) -> int:
        return len(self._keys)

    def add_call_listener(self, listener: CallListener) -> None:
        """Called (on the event loop) with a summary of every call that ends."""
        self._call_listeners.append(listener)

    def open_session(self) -> EventSession:
        """An event queue for an outbound flow (voice alert, call-back...).

        Bind the ids of the channels/playbacks it creates before creating them;
        close it when done.
        """
        return EventSession(self._owner)

    async def handle(self, event: TelephonyEvent) -> None:
        if isinstance(event, ChannelEntered):
            if event.channel.id in self._owner:
                self._route(event.channel.id, event)
            elif event.args[:1] == ("agent",) or event.channel.id.startswith(AGENT_PREFIX):
                # An agent leg whose call has ended (answered too late): release it.
                log.info("stray agent leg %s hung up", event.channel.id)
                await self._port.hangup(event.channel.id)
            elif self.draining:
                # Stopping: the dialplan fallback takes new calls from here on.
                log.info("draining: call on %s handed to the dialplan fallback", event.channel.id)
                await self._port.continue_in_dialplan(event.channel.id, *FALLBACK_CONTEXT)
            elif await self._disarm_watchdog(event.channel.id):
                self._start_call(event.channel, event.args)
            else:
                # The dialplan watchdog fired before we got here (this process was
                # frozen or too slow): its fallback has the call and records it.
                log.warning("call on %s already taken by the dialplan watchdog", event.channel.id)
        elif isinstance(event, Resynced):
            await self._reconcile(event)
        elif isinstance(event, AppReplaced):
            log.critical("another ARI client took over the application: stopping")
            self.fatal.set()
        else:
            key = _key_of(event)
            if key is not None:
                self._route(key, event)

    async def _disarm_watchdog(self, channel_id: str) -> bool:
        """False only when the channel is no longer ours (the watchdog fired)."""
        try:
            return await self._port.disarm_watchdog(channel_id)
        except TelephonyError:
            # A PBX error, not a verdict: take the call; at worst the watchdog hands
            # it to the fallback later, and the flow records the caller leaving.
            log.exception("could not disarm the dialplan watchdog of %s", channel_id)
            return True

    def _route(self, key: str, event: TelephonyEvent) -> None:
        runtime = self._owner.get(key)
        if runtime is not None:
            runtime.events.put_nowait(event)

    def _start_call(
        self,
        caller: Channel,
        args: tuple[str, ...],
        *,
        resume: ResumePoint | None = None,
        bridged: tuple[str, str] | None = None,
        recovered: bool = False,
    ) -> None:
        """Start (or, after a restart, resume) the flow of one inbound call."""
        call_id = resume.call_id if resume else str(uuid.uuid4())
        did = args[0] if args else caller.exten
        try:
            plan = self._plan_for(did, self._clock())
        except Exception:
            log.exception("cannot build a plan for DID %r", did)
            plan = None
        if plan is None:
            self._refuse_unknown(call_id, caller, did)
            return
        limiter = self._rate_limiter
        if (
            limiter
            and not recovered
            and not limiter.admit(did, caller.caller_number, self._clock())
        ):
            plan = limited_plan(plan, limiter.max_calls, limiter.window)
        keys: list[str] = [caller.id]
        self._keys[call_id] = keys

        def bind(object_id: str) -> None:
            keys.append(object_id)
            self._owner[object_id] = runtime

        runtime = CallRuntime(
            call_id=call_id,
            caller_channel_id=caller.id,
            plan=plan,
            port=self._port,
            audit=self._audit,
            sounds=self._sounds,
            clock=self._clock,
            bind=bind,
        )
        self._owner[caller.id] = runtime
        log.info(
            "call %s: line %s (%s), %d hop(s)%s",
            call_id[:8],
            plan.line_name,
            plan.period,
            len(plan.hops),
            " [resumed after restart]" if recovered else "",
        )
        if not recovered:
            flow = CallFlow(runtime, caller, self._voicemail, self._admission)
            self._spawn(self._run_flow(call_id, flow))
            return
        flow = ResumedCallFlow(runtime, caller, self._voicemail, point=resume)
        if bridged is not None:
            for object_id in bridged:
                bind(object_id)
            self._spawn(self._run_flow(call_id, flow, flow.resume_bridged(*bridged)))
        else:
            self._spawn(self._run_flow(call_id, flow, flow.resume_waiting()))

    async def _run_flow(
        self, call_id: str, flow: CallFlow, body: Awaitable[None] | None = None
    ) -> None:
        try:
            await (body if body is not None else flow.run())
        finally:
            for key in self._keys.pop(call_id, []):
                self._owner.pop(key, None)
        if flow.closed is not None:
            for listener in self._call_listeners:
                try:
                    listener(flow.closed)
                except Exception:
                    log.exception("call listener failed for call %s", call_id[:8])

    def _refuse_unknown(self, call_id: str, caller: Channel, did: str) -> None:
        # Unknown DID: audited, told, hung up. The DID is never dialled.
        now = self._clock()
        self._audit.emit(
            CallStarted(
                call_id=call_id,
                did=did,
                line_name="(unknown line)",
                period="unknown",
                caller_number=caller.caller_number,
                caller_name=caller.caller_name,
                channel_id=caller.id,
                at=now,
            )
        )
        self._audit.emit(
            CallEnded(
                call_id=call_id,
                outcome=CallOutcome.FAILED,
                at=now,
                detail="no line configured for this DID",
            )
        )
        log.error("call %s: no line configured for DID %r", call_id[:8], did)
        media = self._sounds.uri("astreinte-no-one", DEFAULT_LANGUAGE)
        self._spawn(self._play_then_hangup(caller.id, media))

    async def _play_then_hangup(self, channel_id: str, media: str) -> None:
        """Play one prompt, hang up when it ends (or the caller leaves first)."""
        session = self.open_session()
        playback_id = f"astreinte-pb-{uuid.uuid4().hex[:16]}"
        session.bind(channel_id)
        session.bind(playback_id)
        try:
            if await self._port.play(channel_id, media, playback_id):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(30):
                        while not isinstance(
                            await session.events.get(),
                            PlaybackFinished | ChannelHungUp | ChannelLeft,
                        ):
                            pass
            await self._port.hangup(channel_id)
        finally:
            session.close()

    async def _reconcile(self, snapshot: Resynced) -> None:
        """After a (re)connection: events sent meanwhile are lost, so compare."""
        present = {c.id for c in snapshot.channels}
        for object_id, owner in list(self._owner.items()):
            if object_id in present or not _is_channel_id(object_id):
                continue
            owner.events.put_nowait(ChannelHungUp(object_id, 0, "gone while ARI was disconnected"))
        bridge_of = {cid: b for b in snapshot.bridges for cid in b.channel_ids}
        orphans = [
            c for c in snapshot.channels if c.stasis_app == self._app and c.id not in self._owner
        ]
        adopted: set[str] = set()
        for caller in orphans:
            if caller.id.startswith(AGENT_PREFIX) or caller.stasis_args[:1] == ("agent",):
                continue
            bridge = bridge_of.get(caller.id)
            agents = [
                c for c in (bridge.channel_ids if bridge else ()) if c.startswith(AGENT_PREFIX)
            ]
            if not await self._disarm_watchdog(caller.id):
                continue  # left Stasis meanwhile: the dialplan has it
            point = await self._lookup(caller.id)
            if bridge is not None and agents and agents[0] in present:
                adopted.update((agents[0], bridge.id))
                self._start_call(
                    caller,
                    caller.stasis_args,
                    resume=point,
                    bridged=(agents[0], bridge.id),
                    recovered=True,
                )
            else:
                self._start_call(caller, caller.stasis_args, resume=point, recovered=True)
        for channel in orphans:
            if channel.id.startswith(AGENT_PREFIX) and channel.id not in adopted:
                log.warning("stray agent leg %s from an earlier run hung up", channel.id)
                await self._port.hangup(channel.id)

    async def _lookup(self, channel_id: str) -> ResumePoint | None:
        if self._resume_lookup is None:
            return None
        try:
            return await asyncio.wait_for(self._resume_lookup(channel_id), timeout=3.0)
        except Exception:
            # Database down: the call still goes on, under a new audit record.
            log.exception("cannot read the audit trail to resume channel %s", channel_id)
            return None

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in progress (graceful stop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._keys and loop.time() < deadline:
            await asyncio.sleep(0.2)
        return not self._keys


class EventSession:
    """Routes the events of the objects it binds into its own queue."""

    def __init__(self, owner: dict[str, CallRuntime | EventSession]) -> None:
        self._owner = owner
        self._keys: list[str] = []
        self.events: asyncio.Queue[TelephonyEvent] = asyncio.Queue()

    def bind(self, object_id: str) -> None:
        self._keys.append(object_id)
        self._owner[object_id] = self

    def close(self) -> None:
        for key in self._keys:
            if self._owner.get(key) is self:
                del self._owner[key]
        self._keys.clear()


def _is_channel_id(object_id: str) -> bool:
    """Our playbacks, recordings and bridges are not channels."""
    return not object_id.startswith(("astreinte-pb-", "astreinte-vm-", "astreinte-bridge-"))


def _key_of(event: TelephonyEvent) -> str | None:
    if isinstance(
        event, ChannelHungUp | ChannelLeft | HangupRequested | ChannelRinging | DtmfReceived
    ):
        return event.channel_id
    if isinstance(event, PlaybackFinished):
        return event.playback_id
    if isinstance(event, RecordingFinished):
        return event.name
    return None
