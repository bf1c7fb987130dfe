"""The alert engine: opens alerts, steps them on when due (escalation, deadlines), acknowledges.

State lives in the database (alerts.next_step); the scheduler only wakes the
engine up (`run_due(alert_id)`), so a restart resumes where it stopped. Sends
(step_sender.py) run as background tasks: a 60 s voice call never delays
another alert. What counts as a missed call is missed_calls.py's rule.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from astreinte_ari.alerting.events import EventTeller, ack_events
from astreinte_ari.alerting.links import LinkIssuer
from astreinte_ari.alerting.messages import recipient_of
from astreinte_ari.alerting.missed_calls import is_missed, missed_call_chain
from astreinte_ari.alerting.model import Alert, ShiftOverride, acknowledgement
from astreinte_ari.alerting.policy import due_steps, step_at
from astreinte_ari.alerting.ports import AlertRepository, EventSink, Notifier, Recipient
from astreinte_ari.alerting.step_sender import StepSender
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.config.alerting import AlertingConfig
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def new_alert_id() -> str:
    return uuid.uuid4().hex[:12]


def ack_alert(
    store: AlertRepository,
    alert_id: str,
    *,
    by: str,
    via: str,
    now: datetime,
    detail: str | None = None,
) -> Alert | None:
    """Acknowledge an open alert (any process: service, CLI). None if not open/unknown.

    `alert_id` may be an unambiguous prefix (the CLI's short ids). What the
    acknowledgement also writes (a replacement routed for the shift) is
    model.acknowledgement's rule; the store writes it all in one transaction.
    """
    alert = store.get(alert_id)
    if alert is None or not alert.is_open:
        return None
    if not store.acknowledge(acknowledgement(alert, by=by, via=via, now=now, detail=detail)):
        return None  # acknowledged meanwhile, by another channel or process
    return store.get(alert.id)


class AlertEngine:
    def __init__(
        self,
        *,
        config: AppConfig,
        store: AlertRepository,
        notifiers: dict[str, Notifier],
        links: LinkIssuer | None,
        clock: Clock,
        schedule: Callable[[str, datetime], None],
        unschedule: Callable[[str], None],
        events: EventSink | None = None,
    ) -> None:
        assert config.alerting is not None
        self.config = config
        self.alerting: AlertingConfig = config.alerting
        self.store = store
        self.notifiers = notifiers
        self.links = links
        self.clock = clock
        self._schedule = schedule
        self._unschedule = unschedule
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._overrides: list[ShiftOverride] = []
        self.events = EventTeller(events, links)  # what the webhooks are told
        self.sender = StepSender(
            store=store,
            notifiers=notifiers,
            links=links,
            config=lambda: self.config,
            clock=lambda: self.clock(),
            acknowledge=self.ack,
            spawn=self._spawn,
        )

    def use_config(self, config: AppConfig) -> None:
        """A live edit: people, rotas, policies and channels apply from the next step."""
        assert config.alerting is not None
        self.config, self.alerting = config, config.alerting

    # -- opening ---------------------------------------------------------------------

    def on_call_closed(self, closed: CallClosed) -> None:
        """Call listener (event loop): a missed call opens an alert for its chain."""
        if not self.alerting.missed_calls.enabled or not is_missed(closed):
            return
        self._spawn(self._open_missed_once(closed))

    async def _open_missed_once(self, closed: CallClosed) -> str | None:
        # One alert per call: a call the cluster's leader closed as node_lost may be
        # announced again by its own node's service when that one comes back.
        earlier = await asyncio.to_thread(self.store.find_for_call, "missed_call", closed.call_id)
        if earlier is not None:
            log.info("call %s: missed-call alert %s already open", closed.call_id[:8], earlier.id)
            return None
        return await self.open_missed_call(closed)

    async def open_missed_call(self, closed: CallClosed) -> str | None:
        chain = missed_call_chain(closed)
        if not chain or closed.plan.team is None:
            log.error("call %s missed but has nobody to alert", closed.call_id[:8])
            return None
        return await self.open_alert(
            kind="missed_call",
            policy=self.alerting.missed_calls.policy,
            chain=chain,
            opened_at=self.clock(),
            team=closed.plan.team,
            call_id=closed.call_id,
            line_did=closed.plan.did,
            line_name=closed.plan.line_name,
            language=closed.plan.language,
            caller_number=closed.caller_number,
            voicemail_path=closed.voicemail_path,
        )

    async def open_test_call_failed(
        self, *, did: str, call_id: str | None, language: str | None = None
    ) -> str | None:
        """A line's test call failed: its `test_call.alert` people are told, with the
        repeats and escalation of its `test_call.policy` (until acknowledged)."""
        line = self.config.lines.get(did)
        if line is None or line.test_call is None:
            return None
        spec = line.test_call
        return await self.open_alert(
            kind="test_call_failed",
            policy=spec.policy,
            chain=spec.alert,
            opened_at=self.clock(),
            team=line.team,
            call_id=call_id,
            line_did=did,
            line_name=line.name,
            language=language or line.language,
        )

    async def open_alert(
        self,
        *,
        kind: str,
        policy: str,
        chain: tuple[str, ...],
        opened_at: datetime,
        state: str = "open",
        **values: object,
    ) -> str:
        alert_id = new_alert_id()
        row = dict(
            values,
            id=alert_id,
            kind=kind,
            state=state,
            policy=policy,
            chain=chain,
            opened_at=opened_at,
            next_step=0,
        )
        await asyncio.to_thread(self.store.insert_alert, row)
        event = "opened" if state == "open" else "scheduled"
        await asyncio.to_thread(self.store.add_event, alert_id, self.clock(), event, detail=kind)
        log.info("alert %s (%s) %s for %s", alert_id, kind, event, ", ".join(chain))
        if kind == "missed_call":
            opened = await asyncio.to_thread(self.store.get, alert_id)
            if opened is not None:
                told = "voicemail_left" if opened.voicemail_path else "call_missed"
                await self._tell(told, opened)
        if state == "open":
            await self.run_due(alert_id)
        else:
            self._schedule(alert_id, opened_at)
        return alert_id

    # -- the scheduled wake-up -------------------------------------------------------------

    async def run_due(self, alert_id: str) -> None:
        lock = self._locks.setdefault(alert_id, asyncio.Lock())
        async with lock:
            await self._run_due(alert_id)
        if not lock.locked():
            self._locks.pop(alert_id, None)

    async def _run_due(self, alert_id: str) -> None:
        alert = await asyncio.to_thread(self.store.get, alert_id)
        if alert is None or not alert.is_open:
            return
        now = self.clock()
        if alert.state == "scheduled":
            if now < alert.opened_at:
                self._schedule(alert_id, alert.opened_at)
                return
            await asyncio.to_thread(self.store.update, alert_id, state="open")
            await asyncio.to_thread(
                self.store.add_event, alert_id, now, "opened", detail=alert.kind
            )
        if alert.deadline_at is not None and now >= alert.deadline_at:
            await self._deadline_passed(alert, now)
            return
        policy = self.alerting.policy(alert.policy)
        due, upcoming = due_steps(
            alert.next_step,
            now,
            opened_at=alert.opened_at,
            chain=alert.chain,
            policy=policy,
            channels_for=self.alerting.channels_for,
        )
        last_person = None
        if alert.next_step:
            previous = step_at(
                alert.next_step - 1,
                opened_at=alert.opened_at,
                chain=alert.chain,
                policy=policy,
                channels_for=self.alerting.channels_for,
            )
            last_person = previous.person_id if previous else None
        next_index = due[-1].index + 1 if due else alert.next_step
        if upcoming is not None:
            next_index = upcoming.index
        wake = upcoming.at if upcoming is not None else None
        if alert.deadline_at is not None:
            wake = alert.deadline_at if wake is None else min(wake, alert.deadline_at)
        await asyncio.to_thread(self.store.update, alert_id, next_step=next_index, next_at=wake)
        for step in due:
            if last_person is not None and step.person_id != last_person:
                await asyncio.to_thread(
                    self.store.add_event,
                    alert_id,
                    now,
                    "escalated",
                    person_id=step.person_id,
                    detail=f"from {last_person} after round {step.round}",
                )
            last_person = step.person_id
            self._spawn(self.sender.send(alert, step))
        if wake is not None:
            self._schedule(alert_id, wake)
        elif upcoming is None and not due:
            await asyncio.to_thread(
                self.store.update, alert_id, only_if_open=True, state="exhausted"
            )
            await asyncio.to_thread(
                self.store.add_event,
                alert_id,
                now,
                "exhausted",
                detail=f"{policy.max_rounds} rounds without acknowledgement",
            )
            log.error("alert %s: %d rounds without acknowledgement", alert_id, policy.max_rounds)

    # -- deadline of a shift start -------------------------------------------------------------

    async def _deadline_passed(self, alert: Alert, now: datetime) -> None:
        if not await asyncio.to_thread(
            self.store.update, alert.id, only_if_open=True, state="expired"
        ):
            return
        await asyncio.to_thread(
            self.store.add_event,
            alert.id,
            now,
            "expired",
            person_id=alert.chain[0],
            detail="not acknowledged by the deadline",
        )
        await self._tell("shift_not_acknowledged", alert, person_id=alert.chain[0])
        spec = next(
            (s for s in self.alerting.shift_start if s.team == alert.team and s.rota == alert.rota),
            None,
        )
        if spec is None:
            return
        missed = self.recipient(alert.team, alert.chain[0])
        common = dict(
            team=alert.team,
            rota=alert.rota,
            shift_start=alert.shift_start,
            shift_end=alert.shift_end,
            parent_id=alert.id,
            language=alert.language,
        )
        await self.open_alert(
            kind="shift_cover",
            policy=spec.policy,
            chain=(spec.replacement,),
            opened_at=now,
            **common,
        )
        await self.open_alert(
            kind="shift_missed",
            policy=spec.policy,
            chain=(spec.supervisor,),
            opened_at=now,
            line_name=missed.name if missed else alert.chain[0],
            **common,
        )

    # -- acknowledgement ---------------------------------------------------------------------

    async def ack(
        self, alert_id: str, *, by: str, via: str, detail: str | None = None
    ) -> Alert | None:
        """Every acknowledgement comes here (link, voice, SMS reply): reminders stop,
        the trail and the webhooks are told; `detail` says how, in words."""
        acked = await asyncio.to_thread(
            ack_alert, self.store, alert_id, by=by, via=via, now=self.clock(), detail=detail
        )
        if acked is None:
            return None
        self._unschedule(acked.id)
        log.info("alert %s acknowledged by %s via %s", acked.id, by, via)
        for event in ack_events(acked):
            await self._tell(event, acked, person_id=by, via=via)
        if acked.kind == "shift_cover":
            await self.refresh_overrides()
        return acked

    # -- overrides for the router ------------------------------------------------------------

    async def refresh_overrides(self) -> None:
        since = self.clock() - timedelta(days=1)
        self._overrides = await asyncio.to_thread(self.store.overrides, since)

    def on_call_override(self, team: str, rota: str, at: datetime) -> str | None:
        """Router hook: the recorded replacement holding `rota` at `at`, if any."""
        for o in reversed(self._overrides):
            if o.team == team and o.rota == rota and o.start <= at < o.end:
                return o.person_id
        return None

    # -- helpers --------------------------------------------------------------------------

    def recipient(self, team: str | None, person_id: str) -> Recipient | None:
        return recipient_of(self.config, team, person_id)

    async def _tell(
        self, event: str, alert: Alert, *, person_id: str | None = None, via: str | None = None
    ) -> None:
        await self.events.tell(
            event, alert, config=self.config, now=self.clock(), person_id=person_id, via=via
        )

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 120.0) -> None:
        """Wait for in-flight notifications (tests, graceful stop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - loop.time()))
