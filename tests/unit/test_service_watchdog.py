"""OnCallService and the dialplan watchdog: a new call is handled only once its
watchdog is disarmed; a failed disarm means the dialplan already has the call."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import pytest

from astreinte_ari.callflow.runtime import SoundLibrary
from astreinte_ari.callflow.telephony import Channel, ChannelEntered, TelephonyError
from astreinte_ari.service import OnCallService


class WatchdogPort:
    """Records actions; `disarm` is what disarm_watchdog answers (or raises)."""

    def __init__(self, disarm: bool | Exception) -> None:
        self.disarm = disarm
        self.actions: list[str] = []

    async def disarm_watchdog(self, channel_id: str) -> bool:
        self.actions.append(f"disarm {channel_id}")
        if isinstance(self.disarm, Exception):
            raise self.disarm
        return self.disarm

    def __getattr__(self, name: str) -> Any:
        async def gone(*args: Any, **kwargs: Any) -> bool:
            self.actions.append(name)
            return False  # any other action: the channel is already gone

        return gone


class NullAudit:
    def emit(self, event: object) -> None:
        pass


@pytest.mark.parametrize(
    ("disarm", "handled"),
    [
        (True, True),  # disarmed: ours
        (False, False),  # not in Stasis any more: the watchdog fired, the fallback has it
        (TelephonyError("HTTP 500"), True),  # a PBX error is no verdict: take the call
    ],
)
async def test_new_call_waits_for_the_watchdog_disarm(
    disarm: bool | Exception, handled: bool
) -> None:
    port = WatchdogPort(disarm)
    planned: list[str] = []

    def plan_for(did: str, now: datetime) -> None:
        planned.append(did)
        return None  # unknown DID: the service refuses the call (prompt, hang up)

    service = OnCallService(
        port=port,  # type: ignore[arg-type]
        audit=NullAudit(),  # type: ignore[arg-type]
        sounds=SoundLibrary(PurePosixPath("/snd")),
        voicemail=None,  # type: ignore[arg-type]
        plan_for=plan_for,
        clock=lambda: datetime(2026, 11, 25, 22, 0, tzinfo=UTC),
    )
    caller = Channel("c1", "PJSIP/trunk-1", "Up", "+33612345678", "", exten="+33180000000")
    await service.handle(ChannelEntered(caller, ("+33180000000",)))
    await asyncio.sleep(0.05)  # the refusal's prompt task
    assert port.actions[0] == "disarm c1"
    assert planned == (["+33180000000"] if handled else [])
