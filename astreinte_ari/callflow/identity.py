"""Who is who on the PBX: call ids and the ids of what the service creates.

One audit call id per inbound channel, whoever handles the call.

The service, the dialplan fallback (AGI) and the last-resort dialplan all
derive the call id from Asterisk's UNIQUEID of the caller's channel (which is
also its ARI channel id). A call the service saw and then lost to the
fallback (watchdog, draining), or that both touched, is therefore ONE record:
the second writer's CallStarted is a no-op on the same id.

Every object the service creates on the PBX has an id starting with
"astreinte-<kind>-", so its events find their owner and an earlier process's
leftovers can be told apart after a restart.
"""

from __future__ import annotations

import re
import uuid

# Kept from the first fallback importer: existing fallback ids stay stable.
_NAMESPACE = uuid.UUID("1f0e7a52-3a9c-4d1e-9d0a-6a2f8c1b7e44")
_UNSAFE = re.compile(r"[^-A-Za-z0-9._]")
_MAX_KEY = 80


def uniqueid_key(uniqueid: str) -> str:
    """UNIQUEID reduced to what may appear in a file name (systemname prefix kept)."""
    return _UNSAFE.sub("", uniqueid)[:_MAX_KEY]


def call_id_for_channel(uniqueid: str) -> str:
    """The audit call id of the inbound call on the channel with this UNIQUEID."""
    return str(uuid.uuid5(_NAMESPACE, f"astreinte-fallback/{uniqueid_key(uniqueid)}"))


def recording_name_for(call_id: str) -> str:
    """The PBX's name for a call's voicemail recording: derivable from the trail alone,
    so a message the service could not store can be fetched again later."""
    return "astreinte-vm-" + call_id.replace("-", "")


def conversation_recording_name_for(call_id: str) -> str:
    """The PBX's name for the recording of a call's bridged conversation."""
    return "astreinte-conv-" + call_id.replace("-", "")


OWN_PREFIX = "astreinte-"  # every object this service creates on the PBX
AGENT_LEG = "astreinte-agent-"  # an inbound call's hop to a person
ALERT_LEG = "astreinte-alert-"  # a voice alert, and its call-back leg (astreinte-alert-cb-)
CALLBACK_LEG = "astreinte-alert-cb-"
PUBLISH_LEG = "astreinte-publish-"  # a Local channel in the dialplan, never in Stasis
# A line's test call (callflow/selftest.py): the Local channel's half that enters the
# application as a caller, and the half that stays in the dialplan as its source.
TEST_LEG = "astreinte-testcall-"
TEST_SOURCE_LEG = "astreinte-testsrc-"


def new_object_id(kind: str) -> str:
    """A fresh id for a channel, playback, bridge or recording ("pb", "bridge", ...)."""
    return f"{OWN_PREFIX}{kind}-{uuid.uuid4().hex[:16]}"


def agent_channel_id(hop_id: str) -> str:
    """The channel id of a hop's agent leg (a hop has at most one)."""
    return AGENT_LEG + hop_id.replace("-", "")


def is_originated_leg(channel_id: str) -> bool:
    """A leg the service rang into Stasis (agent, alert, call-back): after a restart,
    one nobody owns any more is a leftover to hang up. Dialplan helpers are not."""
    return channel_id.startswith((AGENT_LEG, ALERT_LEG))
