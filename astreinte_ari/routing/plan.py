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


class AnnouncementMode(enum.StrEnum):
    """How much of the announcement the caller hears when an agent accepts during it
    (early dial)."""

    FULL = "full"  # all of it: the agent who accepted meanwhile waits, on hold
    # Cut short when an agent accepts. The recorded-call notice is never cut: a caller
    # must hear it before talking to anyone.
    UNTIL_ACCEPTED = "until_accepted"


class BusyAgents(enum.StrEnum):
    """What the cascade does with a person the service already has on another
    on-call call (ringing or talking): the line's `busy_agents`."""

    SKIP = "skip"  # not rung; the trail says why and the cascade moves on at once
    LAST = "last"  # rung after every free hop (still busy then: rung anyway)
    RING = "ring"  # rung in turn as if free (phones with call waiting)


class TargetKind(enum.StrEnum):
    """How a hop's target is reached."""

    TRUNK = "trunk"  # a phone number, dialled through the operator trunk (trunk.dial)
    SIP = "sip"  # an endpoint on this PBX (a desk phone, a softphone): PJSIP/<endpoint>
    # Several targets rung at once (a ring-all hop): `members` are the targets above,
    # the dial string joins theirs with "&" (what the dialplan fallback dials).
    GROUP = "group"
    LOCAL = "local"  # the dialplan's built-in test endpoint (test calls only, selftest.py)


@dataclass(frozen=True, slots=True)
class DialTarget:
    """What one hop dials, resolved once when the plan is made (routing/targets.py).

    The originate dials `dial_string` as it stands: a configuration edit during
    the call changes neither whom nor how (the allow-list is still checked again
    right before dialling, against the configuration in force then).
    """

    kind: TargetKind
    address: str  # what the configuration names: E.164 number (trunk), endpoint name (sip)
    dial_string: str  # what Asterisk dials, e.g. "PJSIP/+33612345678@operator", "PJSIP/desk-101"
    members: tuple[DialTarget, ...] = ()  # a group's targets (ring-all hop)

    @property
    def display(self) -> str:
        """How people read it, and what the trail's `number` column holds:
        "+33612345678" (trunk), "sip:desk-101" (sip), "+33612345678&sip:desk-101" (group)."""
        if self.kind is TargetKind.GROUP:
            return "&".join(m.display for m in self.members)
        return self.address if self.kind is TargetKind.TRUNK else f"{self.kind}:{self.address}"

    def leaves(self) -> tuple[DialTarget, ...]:
        """The single targets actually dialled (each one allow-listed on its own)."""
        if not self.members:
            return (self,)
        return tuple(leaf for member in self.members for leaf in member.leaves())


@dataclass(frozen=True, slots=True)
class Hop:
    """One attempt to reach one person."""

    label: str  # rota or role name, e.g. "primary", "supervisor"
    person_id: str
    person_name: str
    target: DialTarget  # already checked against the allow-list when the plan was made
    ring_timeout_s: int
    require_accept: bool = True  # agent must press the accept digit
    # A ring-all hop: the people rung at once (each a one-person hop with the same
    # label and timeout; `target` is then their GROUP); the first to accept wins.
    members: tuple[Hop, ...] = ()

    @property
    def number(self) -> str:
        """The target as people read it ("+33612345678", "sip:desk-101")."""
        return self.target.display

    @property
    def dial_string(self) -> str:
        return self.target.dial_string


@dataclass(frozen=True, slots=True)
class VoicemailPolicy:
    max_duration_s: int = 180
    max_silence_s: int = 6
    terminate_on: str = "#"


RECORDING_NOTICE = "astreinte-recording-notice"


@dataclass(frozen=True, slots=True)
class RecordingPolicy:
    """The line records its conversations (record_calls): why, and who may stop it."""

    purpose: str
    notice: str = RECORDING_NOTICE  # told to the caller before any recording starts
    agent_can_stop: bool = False
    stop_keys: str = "*9"  # the agent's keys that stop the recording and discard it


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
    recording: RecordingPolicy | None = None  # None: conversations are not recorded
    note: str | None = None  # why the plan was reduced (e.g. caller rate limit)
    # Ring the first hop while the announcement plays, instead of after it.
    early_dial: bool = False
    announcement_mode: AnnouncementMode = AnnouncementMode.FULL
    busy_agents: BusyAgents = BusyAgents.SKIP
    # The line's scheduled test call (routing/selftest.py): hops ring the test endpoint,
    # the call ends once bridged, and its outcome is test_passed / test_failed.
    test_call: bool = False
    # A key chooses another line's cascade after the announcement (routing/menu.py);
    # nobody is rung before the choice, early dial or not.
    menu: MenuPlan | None = None
    caller_routes: tuple[CallerRoutePlan, ...] = ()  # checked when the call arrives
    # Why this plan runs another line's cascade ("caller route vip → ...", "menu: key
    # 2 → ..."): on the trail. The call still counts under the dialled line.
    routed: str | None = None


@dataclass(frozen=True, slots=True)
class MenuChoicePlan:
    """One key of a menu and the plan of the line it leads to, made at the same instant."""

    key: str  # one of 0-9, * and #
    label: str
    plan: CallPlan


@dataclass(frozen=True, slots=True)
class MenuPlan:
    prompt: str  # sound name, in the line's language
    timeout_s: int  # waited for a key after the prompt ends
    default_key: str  # taken on no key or a key not offered; one of the choices' keys
    choices: tuple[MenuChoicePlan, ...]

    def choice(self, key: str) -> MenuChoicePlan | None:
        return next((c for c in self.choices if c.key == key), None)

    @property
    def default(self) -> MenuChoicePlan:
        choice = self.choice(self.default_key)
        assert choice is not None, "the loader refuses a default that is not a choice"
        return choice


@dataclass(frozen=True, slots=True)
class CallerRoutePlan:
    """Callers (normalised E.164 numbers) sent at once to another line's cascade."""

    label: str
    callers: tuple[str, ...]
    plan: CallPlan
