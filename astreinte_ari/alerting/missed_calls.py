"""Missed calls: which closed calls count as missed, and whom their alert goes to."""

from __future__ import annotations

from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.outcomes import CallOutcome, CallState

# States in which a hung-up caller had heard the announcement and was waiting for us.
_AFTER_ANNOUNCEMENT = frozenset(
    {CallState.DIALING, CallState.AGENT_PROMPT, CallState.VOICEMAIL_GREETING, CallState.RECORDING}
)
# FAILED too: a call the service or the PBX failed on is a caller nobody took.
MISSED_OUTCOMES = frozenset(
    {CallOutcome.VOICEMAIL, CallOutcome.VOICEMAIL_EMPTY, CallOutcome.NO_ONE, CallOutcome.FAILED}
)


def is_missed(closed: CallClosed) -> bool:
    """Voicemail (left or not), nobody reached, failed, abandoned after the announcement,
    or lost with its node before an agent took it."""
    if closed.outcome in MISSED_OUTCOMES:
        return True
    if closed.outcome is CallOutcome.NODE_LOST:  # its node died: missed unless bridged
        return closed.accepted_person_id is None
    return closed.outcome is CallOutcome.ABANDONED and closed.last_state in _AFTER_ANNOUNCEMENT


def missed_call_chain(closed: CallClosed) -> tuple[str, ...]:
    """The people the call's plan rang, in order, each once: its alert's escalation
    chain (the business forward is a number, nobody to alert)."""
    chain: list[str] = []
    for hop in closed.plan.hops:
        if hop.person_id not in chain and hop.person_id != "business-forward":
            chain.append(hop.person_id)
    return tuple(chain)
