"""TelephonyPort over ARI, with the dial guard: the only place that originates."""

from __future__ import annotations

import logging
from collections.abc import Callable

from astreinte_ari.adapters.ari.client import AriClient, AriError, AriNotFound
from astreinte_ari.callflow.telephony import TelephonyError

log = logging.getLogger(__name__)

# Only digits, '*', '#' may end a recording.
_TERMINATORS = frozenset("0123456789*#")


class AriTelephony:
    """Implements callflow.telephony.TelephonyPort.

    `dial_string_for(number)` comes from the trunk configuration and raises
    when the number is not allow-listed, so nothing can make this service
    dial a number the configuration does not name.
    """

    def __init__(self, client: AriClient, dial_string_for: Callable[[str], str]) -> None:
        self._client = client
        self._dial_string_for = dial_string_for

    async def originate(
        self,
        *,
        channel_id: str,
        number: str,
        app_args: tuple[str, ...],
        caller_id: str,
        timeout_s: int,
    ) -> None:
        endpoint = self._dial_string_for(number)  # raises NumberNotAllowed
        try:
            await self._client.originate(
                endpoint=endpoint,
                channel_id=channel_id,
                app_args=list(app_args),
                caller_id=caller_id,
                timeout_s=timeout_s,
            )
        except AriError as exc:
            raise TelephonyError(str(exc)) from exc

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        return await self._tolerate_gone(self._client.hangup(channel_id, reason))

    async def continue_in_dialplan(self, channel_id: str, context: str, exten: str) -> bool:
        return await self._tolerate_gone(
            self._client.continue_in_dialplan(channel_id, context, exten)
        )

    async def disarm_watchdog(self, channel_id: str) -> bool:
        # dialplan/extensions_astreinte.conf arms TIMEOUT(absolute) before Stasis().
        return await self._tolerate_gone(
            self._client.set_variable(channel_id, "TIMEOUT(absolute)", "0")
        )

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
        return await self._tolerate_gone(self._client.stop_playback(playback_id))

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

    async def create_bridge(self, bridge_id: str) -> None:
        try:
            await self._client.create_bridge(bridge_id, "mixing")
        except AriError as exc:
            raise TelephonyError(str(exc)) from exc

    async def add_to_bridge(self, bridge_id: str, channel_ids: tuple[str, ...]) -> bool:
        return await self._tolerate_gone(self._client.add_channels(bridge_id, list(channel_ids)))

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
