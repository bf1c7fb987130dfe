"""Audit events emitted by the call flow, consumed by the store (an edge).

The call flow only emits these immutable records; writing them (in order,
off the event loop) is the store's business. Each record's `kind` names it in
the audit log: the writer, its replay keys and `audit verify` all read it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome


class AuditKind(StrEnum):
    """The audit log's `kind` of each call-flow event. Stored in every record and
    hashed into the chain: a value never changes once written."""

    CALL_STARTED = "call.started"
    CALL_STATE = "call.state"
    CALL_ANSWERED = "call.answered"
    CALL_ENDED = "call.ended"
    HOP_STARTED = "hop.started"
    HOP_PROGRESS = "hop.progress"
    HOP_ENDED = "hop.ended"
    CALL_RECORDING = "call.recording"


@dataclass(frozen=True, slots=True)
class CallStarted:
    kind: ClassVar[AuditKind] = AuditKind.CALL_STARTED
    call_id: str
    did: str
    line_name: str
    period: str
    caller_number: str  # untrusted, raw as received
    caller_name: str  # untrusted, raw as received
    channel_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StateChanged:
    kind: ClassVar[AuditKind] = AuditKind.CALL_STATE
    call_id: str
    seq: int  # 1, 2, ... per call
    from_state: CallState
    to_state: CallState
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class HopStarted:
    kind: ClassVar[AuditKind] = AuditKind.HOP_STARTED
    call_id: str
    hop_id: str
    seq: int  # 1-based position in the cascade
    label: str
    person_id: str
    person_name: str
    number: str  # the target as people read it: "+33612345678", "sip:desk-101"
    at: datetime
    # How it was reached (routing.plan.TargetKind: "trunk", "sip") and what was dialled
    # ("PJSIP/+33612345678@operator", "PJSIP/desk-101"); None on records that predate them.
    target_kind: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class HopProgress:
    """The agent's phone rang, answered, or accepted."""

    kind: ClassVar[AuditKind] = AuditKind.HOP_PROGRESS
    hop_id: str
    event: str  # "ringing" | "answered" | "accepted"
    at: datetime


@dataclass(frozen=True, slots=True)
class HopEnded:
    kind: ClassVar[AuditKind] = AuditKind.HOP_ENDED
    hop_id: str
    outcome: HopOutcome
    at: datetime
    cause_code: int | None = None  # Q.850 cause from Asterisk
    cause_text: str | None = None
    dtmf: str | None = None  # what the agent pressed, if anything


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """The caller is connected to a person (accepted hop)."""

    kind: ClassVar[AuditKind] = AuditKind.CALL_ANSWERED
    call_id: str
    hop_id: str
    person_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CallEnded:
    kind: ClassVar[AuditKind] = AuditKind.CALL_ENDED
    call_id: str
    outcome: CallOutcome
    at: datetime
    detail: str  # e.g. "abandoned at dialing (hop 2)"
    talk_seconds: float | None = None
    voicemail_path: str | None = None
    voicemail_seconds: float | None = None


class RecordingStep(StrEnum):
    """What happened to a conversation's recording (docs/recording.md). Stored."""

    NOTICE_PLAYED = "notice_played"  # the caller heard the notice in full
    NOTICE_FAILED = "notice_failed"  # it could not be played: nothing is recorded
    NOT_STARTED = "not_started"  # the caller was not told, or the PBX refused
    STARTED = "started"
    EXCLUDED = "excluded"  # the agent pressed the stop keys: stopped, partial file deleted
    STORED = "stored"  # the file is in our storage (path, seconds)
    FAILED = "failed"  # nothing stored (the PBX wrote nothing, or our storage refused)


@dataclass(frozen=True, slots=True)
class ConversationRecording:
    """A step of a bridged conversation's recording; only STORED sets the call's
    recording_path and recording_seconds (the columns retention reads)."""

    kind: ClassVar[AuditKind] = AuditKind.CALL_RECORDING
    call_id: str
    step: RecordingStep
    at: datetime
    name: str | None = None  # the PBX's name for the recording
    path: str | None = None
    seconds: float | None = None
    detail: str | None = None  # the purpose when started; why, otherwise


AuditEvent = (
    CallStarted
    | StateChanged
    | HopStarted
    | HopProgress
    | HopEnded
    | CallAnswered
    | CallEnded
    | ConversationRecording
)
