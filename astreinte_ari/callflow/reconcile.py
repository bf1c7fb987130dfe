"""Close the calls nobody is handling any more, from the PBX's own records.

After a gap (the service killed, frozen or cut off from ARI, the database
down), some calls of the trail are still open although their caller has long
gone. Guessing their ending would put a lie on record; Asterisk's Channel Event
Logging (CEL) kept the truth regardless of the service: when each channel
answered, entered a bridge and hung up, with the Q.850 cause. This module turns
an open call plus those records into the events that close it (pure), and runs
the sweep over the trail (`Reconciler`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from astreinte_ari.callflow.audit_events import AuditEvent, CallEnded, HopEnded, StateChanged
from astreinte_ari.callflow.causes import q850_text
from astreinte_ari.callflow.identity import TEST_LEG, agent_channel_id
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome, outcome_of_test_call
from astreinte_ari.callflow.telephony import ChannelHungUp

log = logging.getLogger("astreinte_ari.reconcile")

AWAY = "while the service was away"
# A call whose caller left without any record of when (CEL off, or rotated away):
# closed at the last moment the trail knows of, and said so.
NO_RECORD = "the PBX kept no record of when (enable CEL: docs/fallback-and-operations.md)"


@dataclass(frozen=True, slots=True)
class ChannelHistory:
    """What the PBX recorded about one channel (from CEL), whoever was listening."""

    channel_id: str
    answered_at: datetime | None = None
    bridged_at: datetime | None = None
    ended_at: datetime | None = None
    cause: int | None = None
    hangup_source: str = ""  # name of the channel that hung up first, "" if unknown


@dataclass(frozen=True, slots=True)
class OpenHop:
    hop_id: str
    seq: int
    person_id: str
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A call of the trail with no ending yet."""

    call_id: str
    channel_id: str  # the caller's channel (= its UNIQUEID)
    started_at: datetime
    last_seq: int  # last state transition on record (0: none)
    last_state: CallState | None  # None: no transition (handed to the fallback at once)
    last_event_at: datetime  # latest time the trail knows of for this call
    answered_at: datetime | None = None
    accepted_hop_id: str | None = None
    accepted_person_id: str | None = None
    open_hops: tuple[OpenHop, ...] = ()


class PbxRecords(Protocol):
    """The PBX's own call records (CEL), read by the service."""

    @property
    def available(self) -> bool:
        """False when the PBX keeps no records the service can read (CEL off)."""
        ...

    async def history(
        self, channel_ids: Collection[str], since: datetime
    ) -> dict[str, ChannelHistory]: ...


def _caller_end(call: OpenCall, caller: ChannelHistory | None) -> tuple[datetime, str]:
    if caller is not None and caller.ended_at is not None:
        cause = caller.cause
        why = f"cause {cause} {q850_text(cause)}" if cause is not None else "cause unknown"
        return caller.ended_at, why
    return call.last_event_at, NO_RECORD


def _hop_ending(
    hop: OpenHop, leg: ChannelHistory | None, caller_end: datetime, accepted: bool
) -> HopEnded:
    if accepted:
        ended = min(caller_end, leg.ended_at) if leg and leg.ended_at else caller_end
        cause = leg.cause if leg else None
        return HopEnded(
            hop.hop_id,
            HopOutcome.ACCEPTED,
            ended,
            cause_code=cause,
            cause_text=f"conversation ended {AWAY} (recorded by the PBX)",
        )
    if leg is not None and leg.ended_at is not None and leg.ended_at < caller_end:
        cause = leg.cause or 0
        if leg.answered_at is not None:
            outcome, text = HopOutcome.DECLINED, "hung up at the prompt"
        elif cause == 17:
            outcome, text = HopOutcome.BUSY, "busy"
        elif cause == 21:
            outcome, text = HopOutcome.REJECTED, "rejected"
        else:
            outcome, text = HopOutcome.NO_ANSWER, "no answer"
        return HopEnded(
            hop.hop_id, outcome, leg.ended_at, cause, f"{text} {AWAY} (recorded by the PBX)"
        )
    ended = min(caller_end, leg.ended_at) if leg and leg.ended_at else caller_end
    return HopEnded(hop.hop_id, HopOutcome.CANCELLED, ended, None, f"caller hung up {AWAY}")


def settle_open_call(call: OpenCall, history: dict[str, ChannelHistory]) -> list[AuditEvent]:
    """The events that close `call`, whose caller's channel is known to be gone."""
    caller = history.get(call.channel_id)
    end_at, why = _caller_end(call, caller)
    events: list[AuditEvent] = []
    for hop in call.open_hops:
        leg = history.get(agent_channel_id(hop.hop_id))
        events.append(_hop_ending(hop, leg, end_at, hop.hop_id == call.accepted_hop_id))
    talk: float | None = None
    if call.answered_at is not None:
        outcome = CallOutcome.ACCEPTED
        talk = round(max(0.0, (end_at - call.answered_at).total_seconds()), 1)
        leg = history.get(agent_channel_id(call.accepted_hop_id or ""))
        by = "agent" if leg and leg.ended_at and leg.ended_at < end_at else "caller"
        detail = f"talked {talk}s with {call.accepted_person_id}, ended by {by} {AWAY} ({why})"
    elif call.last_state is None:
        # Handed to the dialplan fallback at once, and the fallback left no record.
        if caller is not None and caller.bridged_at is not None:
            outcome = CallOutcome.CONNECTED
            detail = f"connected by the dialplan fallback, which left no record ({why})"
        else:
            outcome = CallOutcome.ABANDONED
            detail = f"caller hung up in the dialplan fallback, which left no record ({why})"
    else:
        outcome = CallOutcome.ABANDONED
        detail = f"abandoned at {call.last_state.value}: caller hung up {AWAY} ({why})"
    if call.channel_id.startswith(TEST_LEG):  # a test call cut short: never a customer's
        outcome, detail = outcome_of_test_call(outcome), f"test call: {detail}"
    from_state = call.last_state or CallState.RECEIVED
    events.append(
        StateChanged(call.call_id, call.last_seq + 1, from_state, CallState.ENDED, detail, end_at)
    )
    events.append(CallEnded(call.call_id, outcome, end_at, detail, talk_seconds=talk))
    return events


GONE_MEANWHILE = "ended while the service was cut off from the PBX"


async def ended_meanwhile(
    records: PbxRecords | None, channel_ids: Collection[str], since: datetime
) -> dict[str, ChannelHungUp]:
    """Channels of live calls that ended during a gap in the events: with the PBX's
    own time and cause where it kept them, else "gone" with cause 0."""
    ended = {cid: ChannelHungUp(cid, 0, GONE_MEANWHILE) for cid in channel_ids}
    if not channel_ids or records is None or not records.available:
        return ended
    try:
        history = await records.history(channel_ids, since)
    except Exception:
        log.exception("cannot read the PBX's records of the channels that ended")
        return ended
    for cid, record in history.items():
        if record.ended_at is not None:
            cause = record.cause or 0
            text = f"{GONE_MEANWHILE} (cause {cause} {q850_text(cause)})"
            ended[cid] = ChannelHungUp(cid, cause, text, record.ended_at)
    return ended


class AuditSink(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class SweepResult:
    closed: tuple[str, ...]  # call ids closed now
    waiting: tuple[str, ...]  # open, not ours, still on the PBX or with the fallback


class Reconciler:
    """Sweeps the trail's open calls that no flow of this process owns.

    A call still on the PBX is resumed by the service (not here); one the dialplan
    fallback handled is completed by the spool import; every other one is
    closed from the PBX's records, once.
    """

    def __init__(
        self,
        *,
        open_calls: Callable[[], Awaitable[list[OpenCall]]],
        records: PbxRecords | None,
        fallback_pending: Callable[[str], bool],
        audit: AuditSink,
        clock: Callable[[], datetime],
        lookback: timedelta = timedelta(minutes=5),
        record_grace: timedelta = timedelta(minutes=2),
    ) -> None:
        self._open_calls = open_calls
        self._records = records
        self._fallback_pending = fallback_pending
        self._audit = audit
        self._clock = clock
        self._lookback = lookback
        self._record_grace = record_grace
        self._closed: set[str] = set()  # closed by this process: the writer may lag

    async def sweep(self, present: Collection[str], owned: Collection[str]) -> SweepResult:
        """`present`: channel ids on the PBX now; `owned`: call ids live in this process."""
        open_calls = [
            c
            for c in await self._open_calls()
            if c.call_id not in owned and c.call_id not in self._closed
        ]
        gone = [
            c
            for c in open_calls
            if c.channel_id not in present and not self._fallback_pending(c.channel_id)
        ]
        history: dict[str, ChannelHistory] = {}
        available = self._records is not None and self._records.available
        if gone and self._records is not None and available:
            ids = {c.channel_id for c in gone}
            ids.update(agent_channel_id(h.hop_id) for c in gone for h in c.open_hops)
            since = min(c.started_at for c in gone) - self._lookback
            history = await self._records.history(ids, since)
        closed: list[str] = []
        now = self._clock()
        for call in gone:
            caller = history.get(call.channel_id)
            has_end = caller is not None and caller.ended_at is not None
            if available and not has_end and now - call.last_event_at < self._record_grace:
                continue  # the PBX writes its record within moments: look again later
            for event in settle_open_call(call, history):
                self._audit.emit(event)
            self._closed.add(call.call_id)
            closed.append(call.call_id)
            log.warning(
                "call %s closed from the PBX's records: its caller left %s", call.call_id[:8], AWAY
            )
        waiting = tuple(c.call_id for c in open_calls if c.call_id not in closed)
        return SweepResult(tuple(closed), waiting)
