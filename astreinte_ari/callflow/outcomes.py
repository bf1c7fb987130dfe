"""Vocabulary of call states and outcomes, shared by the call flow and the audit trail."""

from __future__ import annotations

import enum


class CallState(enum.StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"  # too many cascades at once: waits on hold for a free slot
    ANNOUNCING = "announcing"
    MENU = "menu"  # the caller hears the line's menu and may press a key (callflow/menu.py)
    DIALING = "dialing"  # an agent leg is being originated / is ringing
    AGENT_PROMPT = "agent_prompt"  # agent answered, hearing "press 1"
    # Early dial: the agent accepted while the caller still hears the announcement
    # (announcement_mode full); the agent waits on hold until it ends.
    AGENT_WAITING = "agent_waiting"
    BRIDGED = "bridged"
    VOICEMAIL_GREETING = "voicemail_greeting"
    RECORDING = "recording"
    ENDED = "ended"


# Which state may follow which: anything else is a programming error.
ALLOWED_TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.RECEIVED: frozenset(
        {
            CallState.QUEUED,
            CallState.ANNOUNCING,
            CallState.MENU,
            CallState.DIALING,
            CallState.VOICEMAIL_GREETING,
            CallState.ENDED,
        }
    ),
    CallState.QUEUED: frozenset(
        {
            CallState.ANNOUNCING,
            CallState.MENU,
            CallState.DIALING,
            CallState.VOICEMAIL_GREETING,
            CallState.ENDED,
        }
    ),
    CallState.ANNOUNCING: frozenset(
        {CallState.MENU, CallState.DIALING, CallState.VOICEMAIL_GREETING, CallState.ENDED}
    ),
    # The choice is always the transition to DIALING (its reason says which and why).
    CallState.MENU: frozenset({CallState.DIALING, CallState.ENDED}),
    # DIALING -> MENU: a call resumed after a restart (written as DIALING) before its
    # caller chose is asked again (callflow/menu.py).
    CallState.DIALING: frozenset(
        {
            CallState.DIALING,
            CallState.MENU,
            CallState.AGENT_PROMPT,
            CallState.AGENT_WAITING,
            CallState.BRIDGED,
            CallState.VOICEMAIL_GREETING,
            CallState.ENDED,
        }
    ),
    CallState.AGENT_PROMPT: frozenset(
        {
            CallState.AGENT_WAITING,
            CallState.BRIDGED,
            CallState.DIALING,
            CallState.VOICEMAIL_GREETING,
            CallState.ENDED,
        }
    ),
    CallState.AGENT_WAITING: frozenset(
        {CallState.BRIDGED, CallState.DIALING, CallState.VOICEMAIL_GREETING, CallState.ENDED}
    ),
    CallState.BRIDGED: frozenset({CallState.BRIDGED, CallState.ENDED}),  # re-attached
    CallState.VOICEMAIL_GREETING: frozenset({CallState.RECORDING, CallState.ENDED}),
    CallState.RECORDING: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class CallOutcome(enum.StrEnum):
    ACCEPTED = "accepted"  # an agent pressed the accept digit; caller and agent bridged
    CONNECTED = "connected"  # business-hours forward answered (no accept needed)
    VOICEMAIL = "voicemail"  # caller left a message
    VOICEMAIL_EMPTY = "voicemail_empty"  # reached voicemail, left nothing
    ABANDONED = "abandoned"  # caller hung up before being connected
    NO_ONE = "no_one"  # every hop failed and no voicemail configured
    FAILED = "failed"  # internal error; detail says why
    # The node whose Asterisk carried the call went silent or lost its Asterisk; the
    # cluster's leader closed the call at the last moment the node was known well.
    NODE_LOST = "node_lost"
    # The line's scheduled test call (never a customer's): reports and KPIs leave it out.
    TEST_PASSED = "test_passed"  # bridged with the test endpoint
    TEST_FAILED = "test_failed"  # anything else; detail says where it stopped


TEST_OUTCOMES = frozenset({CallOutcome.TEST_PASSED, CallOutcome.TEST_FAILED})


def outcome_of_test_call(outcome: CallOutcome) -> CallOutcome:
    """What a test call's ending means: passed once bridged, failed otherwise."""
    if outcome in (CallOutcome.ACCEPTED, CallOutcome.CONNECTED, CallOutcome.TEST_PASSED):
        return CallOutcome.TEST_PASSED
    return CallOutcome.TEST_FAILED


class HopOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"  # wrong key, or hung up at the prompt
    NOT_ACCEPTED = "not_accepted"  # answered but no key (typically a personal voicemail)
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"  # 603/403 from the phone
    UNREACHABLE = "unreachable"  # congestion, no route, SIP timeout
    CANCELLED = "cancelled"  # the caller hung up meanwhile
    REFUSED = "refused"  # number not allow-listed: never dialled
    FAILED = "failed"  # originate failed (ARI error)
    CONNECTED = "connected"  # answered, no accept required (business-hours forward)
    SKIPPED = "skipped"  # not rung: the person is on another on-call call (busy_agents)
