"""The plan for one call: what to play, whom to ring, in which order, for how long.

A plan is computed once when the call arrives (pure function of configuration
and time) and never changes during the call, even if the rota is edited.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Period(enum.StrEnum):
    """Which part of the calendar a call falls in; decides announcement and route."""

    BUSINESS = "business"
    AFTER_HOURS = "after_hours"
    NIGHT = "night"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"


class FinalAction(enum.StrEnum):
    """What happens when every hop has failed."""

    VOICEMAIL = "voicemail"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class Hop:
    """One attempt to reach one person."""

    label: str  # rota or role name, e.g. "primary", "supervisor"
    person_id: str
    person_name: str
    number: str  # E.164, already checked against the trunk allow-list
    dial_string: str  # Asterisk endpoint, e.g. "PJSIP/+33612345678@operator"
    ring_timeout_s: int
    require_accept: bool = True  # agent must press the accept digit


@dataclass(frozen=True, slots=True)
class VoicemailPolicy:
    max_duration_s: int = 180
    max_silence_s: int = 6
    terminate_on: str = "#"


@dataclass(frozen=True, slots=True)
class CallPlan:
    did: str
    line_name: str
    team: str | None
    language: str  # prompt language, e.g. "fr"
    period: Period
    announcement: str | None  # sound name, played to the caller first
    hops: tuple[Hop, ...]
    final: FinalAction
    voicemail: VoicemailPolicy
    agent_caller_id: str  # caller ID shown on agents' phones
    accept_digit: str = "1"
    accept_timeout_s: int = 10  # after the prompt has finished
    accept_prompt: str = "astreinte-press-1"
    line_prompt: str | None = None  # optional sound naming the line, played to the agent
    voicemail_greeting: str = "astreinte-voicemail"
    goodbye: str = "astreinte-goodbye"
    recorded_notice: str | None = None  # "this call may be recorded"
    note: str | None = None  # why the plan was reduced (e.g. caller rate limit)
