"""Q.850 hangup causes in words, for the trail: an auditor reads "no answer", not "0"."""

from __future__ import annotations

# Asterisk's own texts (ast_cause2str) for the causes calls here carry;
# ChannelHangupRequest has the code only, ChannelDestroyed has both.
_Q850_TEXTS = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    27: "Destination out of order",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    127: "Interworking, unspecified",
}


def q850_text(cause: int) -> str:
    return _Q850_TEXTS.get(cause, f"cause {cause}")


def unanswered_leg_text(cause: int, cause_text: str, ringing: bool) -> str:
    """Why an agent leg that never answered ended, in words.

    Asterisk reports cause 0 both for an originate that timed out while ringing
    (nobody answered) and for one that never got an answer from the phone at
    all: say which, instead of "0 Unknown".
    """
    if cause == 0:
        return "no answer (rang until the timeout)" if ringing else "unreachable: no response"
    if cause == 18 and ringing:  # it rang, then the SIP transaction timed out
        return "no answer (no user responding)"
    if cause in (18, 20):
        return f"unreachable: {q850_text(cause).lower()}"
    if cause == 19:
        return "no answer"
    return cause_text or q850_text(cause)


# A *soft* hangup request carries Asterisk's reason flag, not a Q.850 cause
# (include/asterisk/channel.h, AST_SOFTHANGUP_*): the PBX itself ended the channel.
_SOFT_REASONS = {
    4: "the PBX is shutting down",
    16: "the PBX unloaded the application",
    32: "hung up on request (ARI, AMI or the CLI)",
}


def soft_hangup_text(reason: int) -> str:
    return _SOFT_REASONS.get(reason, f"hung up by the PBX (reason {reason})")
