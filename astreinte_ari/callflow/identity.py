"""One audit call id per inbound channel, whoever handles the call.

The service, the dialplan fallback (AGI) and the last-resort dialplan all
derive the call id from Asterisk's UNIQUEID of the caller's channel (which is
also its ARI channel id). A call the service saw and then lost to the
fallback (watchdog, draining), or that both touched, is therefore ONE record:
the second writer's CallStarted is a no-op on the same id.
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
