"""TelephonyPort over ARI, with the dial guard: the only place that originates."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from astreinte_ari.adapters.ari.client import AriClient, AriError, AriNotFound
from astreinte_ari.callflow.telephony import DialRefused, TakeResult, TelephonyError
from astreinte_ari.routing.plan import DialTarget, TargetKind
from astreinte_ari.routing.selftest import TEST_CALLER_NAME

log = logging.getLogger(__name__)

# Only digits, '*', '#' may end a recording.
_TERMINATORS = frozenset("0123456789*#")


INBOUND_CONTEXT = "astreinte-inbound"
TEST_CALL_CONTEXT = "astreinte-testcall"
_TEST_BACKSTOP_S = 15  # the dialplan ends a test call this long after the service would
# A Local channel originated without codecs offers them all and picks the richest
# (slin192), which the prompts cannot be played in without codec_resample: the
# codecs of a phone call instead (measured on Asterisk 22: "failed to play").
LOCAL_FORMATS = "ulaw,alaw"
TEST_DID_RE = re.compile(r"\+?[0-9]{1,40}")


class AriTelephony:
    """Implements callflow.telephony.TelephonyPort.

    Originates dial the target's dial string as the plan resolved it. `check_target`
    is the allow-list of the configuration in force (routing.targets.refusal): it
    raises DialRefused for a target the configuration does not name, so nothing
    can make this service dial what the configuration does not allow.
    """

    def __init__(self, client: AriClient, check_target: Callable[[DialTarget], None]) -> None:
        self._client = client
        self._check_target = check_target

    async def originate(
        self,
        *,
        channel_id: str,
        target: DialTarget,
        app_args: tuple[str, ...],
        caller_id: str,
        timeout_s: int,
    ) -> None:
        self._check_target(target)  # raises DialRefused
        try:
            await self._client.originate(
                endpoint=target.dial_string,
                channel_id=channel_id,
                app_args=list(app_args),
                caller_id=caller_id,
                timeout_s=timeout_s,
                formats=LOCAL_FORMATS if target.kind is TargetKind.LOCAL else None,
            )
        except AriError as exc:
            raise TelephonyError(str(exc)) from exc

    async def place_test_call(
        self, *, did: str, inbound_channel_id: str, source_channel_id: str, timeout_s: int
    ) -> None:
        if not TEST_DID_RE.fullmatch(did):  # a configured line key; never a caller's data
            raise DialRefused(f"{did!r} is not a line number")
        try:
            await self._client.request(
                "POST",
                "/channels",
                params={
                    # The inbound context of dialplan/extensions_astreinte.conf: the
                    # very path a customer's call takes (watchdog, Stasis, fallback).
                    "endpoint": f"Local/{did}@{INBOUND_CONTEXT}/n",
                    "context": TEST_CALL_CONTEXT,
                    "extension": "caller",
                    "priority": 1,
                    "timeout": timeout_s,
                    "callerId": f'"{TEST_CALLER_NAME}" <{did}>',
                    "channelId": source_channel_id,
                    "otherChannelId": inbound_channel_id,
                    "formats": LOCAL_FORMATS,
                },
                # The dialplan's own bound is a backstop for a service gone meanwhile:
                # later than the service's deadline, whose verdict ("not bridged
                # within N s") must come first, even on a loaded machine.
                body={"variables": {"ASTREINTE_TEST_MAX_S": str(timeout_s + _TEST_BACKSTOP_S)}},
            )
        except AriError as exc:
            raise TelephonyError(str(exc)) from exc

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        return await self._tolerate_gone(self._client.hangup(channel_id, reason))

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str,
        exten: str,
        variables: Mapping[str, str] | None = None,
    ) -> bool:
        for name, value in (variables or {}).items():
            if not await self._tolerate_gone(self._client.set_variable(channel_id, name, value)):
                return False
        return await self._tolerate_gone(
            self._client.continue_in_dialplan(channel_id, context, exten)
        )

    async def channel_ids(self) -> set[str]:
        try:
            return {str(c.get("id")) for c in await self._client.list_channels()}
        except AriError as exc:
            raise TelephonyError(str(exc)) from exc

    async def take_call(self, channel_id: str) -> TakeResult:
        # dialplan/extensions_astreinte.conf arms TIMEOUT(absolute) before Stasis().
        try:
            await self._client.set_variable(channel_id, "TIMEOUT(absolute)", "0")
        except AriNotFound:
            return TakeResult.GONE
        except AriError as exc:
            if exc.status == 409:  # "Channel not in Stasis application": the dialplan has it
                return TakeResult.ELSEWHERE
            raise TelephonyError(str(exc)) from exc
        return TakeResult.TAKEN

    async def channel_present(self, channel_id: str) -> bool:
        return await self._exists(self._client.get_channel(channel_id))

    async def playback_active(self, playback_id: str) -> bool:
        return await self._exists(self._client.get_playback(playback_id))

    async def recording_active(self, name: str) -> bool:
        return await self._exists(self._client.get_live_recording(name))

    async def play(
        self, channel_id: str, media: str, playback_id: str, language: str | None = None
    ) -> bool:
        return await self._tolerate_gone(
            self._client.play(channel_id, media, playback_id, language)
        )

    async def start_hold(self, channel_id: str, moh_class: str) -> bool:
        return await self._tolerate_gone(self._client.start_moh(channel_id, moh_class))

    async def stop_hold(self, channel_id: str) -> bool:
        return await self._tolerate_gone(self._client.stop_moh(channel_id))

    async def stop_playback(self, playback_id: str) -> bool:
        try:
            return await self._tolerate_gone(self._client.stop_playback(playback_id))
        except TelephonyError as exc:
            # HTTP 500 "Could not stop playback": it was ending on its own (seen when a
            # key is pressed during a `digits:` readout). Stopping is a wish, not a need.
            log.debug("playback %s could not be stopped: %s", playback_id, exc)
            return False

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        max_duration_s: int,
        max_silence_s: int,
        terminate_on: str,
    ) -> bool:
        terminator = terminate_on if terminate_on in _TERMINATORS else "#"
        return await self._tolerate_gone(
            self._client.record(
                channel_id,
                name,
                fmt="wav",
                max_duration_s=max_duration_s,
                max_silence_s=max_silence_s,
                terminate_on=terminator,
                beep=True,
            )
        )

    async def create_bridge(self, bridge_id: str, *, dtmf_events: bool = False) -> None:
        try:
            await self._client.create_bridge(
                bridge_id, "mixing,dtmf_events" if dtmf_events else "mixing"
            )
        except AriError as exc:
            raise TelephonyError(str(exc)) from exc

    async def snoop(self, channel_id: str, snoop_id: str) -> bool:
        return await self._tolerate_gone(self._client.snoop(channel_id, snoop_id, "snoop"))

    async def record_conversation(self, channel_id: str, name: str, *, max_duration_s: int) -> bool:
        return await self._tolerate_gone(
            self._client.record(
                channel_id,
                name,
                fmt="wav",
                max_duration_s=max_duration_s,
                max_silence_s=0,  # a pause in a conversation is not its end
                terminate_on="none",  # keys are the agent's (the stop keys), never the caller's
                beep=False,
                if_exists="fail",  # never overwrite another conversation
            )
        )

    async def discard_recording(self, name: str) -> bool:
        return await self._tolerate_gone(self._client.cancel_live_recording(name))

    async def add_to_bridge(self, bridge_id: str, channel_ids: tuple[str, ...]) -> bool:
        try:
            await self._client.add_channels(bridge_id, list(channel_ids))
        except AriError as exc:
            # A party that hung up at that very moment: 400 "Channel not found" (ARI
            # checks the channel list before the bridge), 404/409/422 otherwise.
            if exc.status in (404, 409, 422) or (exc.status == 400 and "not found" in str(exc)):
                return False
            raise TelephonyError(str(exc)) from exc
        return True

    async def destroy_bridge(self, bridge_id: str) -> bool:
        return await self._tolerate_gone(self._client.destroy_bridge(bridge_id))

    async def fetch_recording(self, name: str) -> bytes | None:
        try:
            return await self._client.stored_recording_file(name)
        except AriNotFound:
            return None
        except AriError as exc:
            raise TelephonyError(str(exc)) from exc

    async def delete_recording(self, name: str) -> bool:
        return await self._tolerate_gone(self._client.delete_stored_recording(name))

    @staticmethod
    async def _exists(query: object) -> bool:
        try:
            await query  # type: ignore[misc]
        except AriNotFound:
            return False
        except AriError as exc:
            raise TelephonyError(str(exc)) from exc
        return True

    @staticmethod
    async def _tolerate_gone(action: object) -> bool:
        """Run an ARI action; False if its object is already gone (404/409/422)."""
        try:
            await action  # type: ignore[misc]
        except AriNotFound:
            return False
        except AriError as exc:
            if exc.status in (409, 422):  # channel not in Stasis / not in a valid state
                log.debug("ARI action on a leaving channel ignored: %s", exc)
                return False
            raise TelephonyError(str(exc)) from exc
        return True
