"""A thin asyncio ARI client (aiohttp): REST calls and a self-healing websocket.

Why not ari-py: it is Python-2 code (implicit relative imports in ari and
swaggerpy) and does not import on Python 3. The Python-3 ARI libraries we
tried did not survive a dropped websocket. ARI is small: the ~15 endpoints
this service needs are written out here, and the event loop reconnects with
backoff and hands a fresh snapshot (GET /channels, /bridges) to the
application on every (re)connection, because events sent while the socket
was down are lost, not replayed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from astreinte_ari.aio import within

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class AriError(Exception):
    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"ARI {method} {path} -> HTTP {status}: {message}")
        self.status = status


class AriNotFound(AriError):
    """404: the channel/bridge/playback is already gone (normal in hangup races)."""


class AriAuthError(Exception):
    """Asterisk refused the ARI login (HTTP 401/403): retrying cannot help."""


class AriClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        request_timeout_s: float = 5.0,
        max_backoff_s: float = 1.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._max_backoff_s = max_backoff_s
        self._connect_timeout_s = connect_timeout_s
        self.reconnects = 0  # connections made after the first (metrics)
        self.last_error = ""  # why the last connection attempt failed (health, logs)
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> AriClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is None:
            # The ARI login is PBX-admin: always sent as a header, never in the URL.
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)

    async def close(self) -> None:
        self._stopping.set()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stop(self) -> None:
        self._stopping.set()

    # -- REST ----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | list[str]] | None = None,
        body: JsonDict | None = None,
        raw: bool = False,
    ) -> Any:
        if self._session is None:
            await self.open()
        assert self._session is not None
        query: list[tuple[str, str]] = []
        for key, value in (params or {}).items():
            # ARI reads a list parameter as ONE comma-separated query value: repeated
            # parameters keep only the last (measured: a bridge got one channel of two).
            text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
            query.append((key, text))
        url = f"{self.base_url}/ari{path}"
        async with self._session.request(method, url, params=query, json=body) as resp:
            if resp.status >= 400:
                text = (await resp.text())[:300]
                error_cls = AriNotFound if resp.status == 404 else AriError
                raise error_cls(resp.status, method, path, text)
            if raw:
                return await resp.read()
            if resp.status == 204 or resp.content_length == 0:
                return None
            return await resp.json(content_type=None)

    async def asterisk_info(self) -> JsonDict:
        return await self.request("GET", "/asterisk/info")  # type: ignore[no-any-return]

    async def list_channels(self) -> list[JsonDict]:
        return await self.request("GET", "/channels")  # type: ignore[no-any-return]

    async def list_bridges(self) -> list[JsonDict]:
        return await self.request("GET", "/bridges")  # type: ignore[no-any-return]

    async def originate(
        self,
        *,
        endpoint: str,
        channel_id: str,
        app_args: list[str],
        caller_id: str,
        timeout_s: int,
        variables: Mapping[str, str] | None = None,
        formats: str | None = None,
    ) -> JsonDict:
        params: dict[str, str | int | list[str]] = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": ",".join(app_args),
            "callerId": caller_id,
            "timeout": timeout_s,
            "channelId": channel_id,
        }
        if formats:  # a Local channel has no codecs of its own (see LOCAL_FORMATS)
            params["formats"] = formats
        body = {"variables": dict(variables)} if variables else None
        return await self.request("POST", "/channels", params=params, body=body)  # type: ignore[no-any-return]

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def play(
        self, channel_id: str, media: str, playback_id: str, language: str | None = None
    ) -> None:
        params: dict[str, str | int | list[str]] = {"media": media}
        if language:
            params["lang"] = language
        await self.request("POST", f"/channels/{channel_id}/play/{playback_id}", params=params)

    async def start_moh(self, channel_id: str, moh_class: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def get_channel(self, channel_id: str) -> JsonDict:
        return await self.request("GET", f"/channels/{channel_id}")  # type: ignore[no-any-return]

    async def get_playback(self, playback_id: str) -> JsonDict:
        return await self.request("GET", f"/playbacks/{playback_id}")  # type: ignore[no-any-return]

    async def get_live_recording(self, name: str) -> JsonDict:
        return await self.request("GET", f"/recordings/live/{name}")  # type: ignore[no-any-return]

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        fmt: str,
        max_duration_s: int,
        max_silence_s: int,
        terminate_on: str,
        beep: bool,
        if_exists: str = "overwrite",
    ) -> None:
        params: dict[str, str | int | list[str]] = {
            "name": name,
            "format": fmt,
            "maxDurationSeconds": max_duration_s,
            "maxSilenceSeconds": max_silence_s,
            "ifExists": if_exists,
            "beep": "true" if beep else "false",
            "terminateOn": terminate_on,
        }
        await self.request("POST", f"/channels/{channel_id}/record", params=params)

    async def snoop(self, channel_id: str, snoop_id: str, app_args: str) -> None:
        """A channel in our application hearing both directions of `channel_id`."""
        params: dict[str, str | int | list[str]] = {
            "spy": "both",
            "whisper": "none",
            "app": self.app,
            "appArgs": app_args,
            "snoopId": snoop_id,
        }
        await self.request("POST", f"/channels/{channel_id}/snoop", params=params)

    async def cancel_live_recording(self, name: str) -> None:
        """DELETE /recordings/live/{name}: stop and discard."""
        await self.request("DELETE", f"/recordings/live/{name}")

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> None:
        await self.request("POST", "/bridges", params={"type": bridge_type, "bridgeId": bridge_id})

    async def add_channels(self, bridge_id: str, channel_ids: list[str]) -> None:
        await self.request(
            "POST", f"/bridges/{bridge_id}/addChannel", params={"channel": channel_ids}
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/variable",
            params={"variable": variable, "value": value},
        )

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/continue",
            params={"context": context, "extension": extension, "priority": 1},
        )

    async def stored_recording_file(self, name: str) -> bytes:
        return await self.request("GET", f"/recordings/stored/{name}/file", raw=True)  # type: ignore[no-any-return]

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{name}")

    # -- events --------------------------------------------------------------------

    async def run_events(
        self,
        on_message: Callable[[JsonDict], Awaitable[None]],
        on_connect: Callable[[], Awaitable[None]],
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Receive events until stop(); reconnect at once, then with short capped backoff.

        Events sent while the socket is down are lost: the sooner it is back, the
        less the resync must repair. Raises AriAuthError when Asterisk refuses the
        credentials (a configuration error that no retry can fix).
        """
        await self.open()
        assert self._session is not None
        ws_url = self.base_url.replace("http", "ws", 1) + "/ari/events"
        attempt = 0
        connected_once = False
        while not self._stopping.is_set():
            try:
                ws = await within(
                    self._session.ws_connect(
                        ws_url,
                        params={"app": self.app, "subscribeAll": "false"},
                        heartbeat=5.0,
                        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                    ),
                    self._connect_timeout_s,
                )
                async with ws:
                    attempt = 0
                    self.last_error = ""
                    if connected_once:
                        self.reconnects += 1
                    connected_once = True
                    self.connected.set()
                    log.info("ARI websocket connected to %s (app %s)", self.base_url, self.app)
                    await on_connect()
                    await self._pump(ws, on_message)
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (401, 403):
                    raise AriAuthError(
                        f"Asterisk refused the ARI login of user {self._username!r} "
                        f"(HTTP {exc.status})"
                    ) from exc
                self._note_failure(f"HTTP {exc.status} {exc.message}")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self._note_failure(str(exc) or type(exc).__name__)
            if self.connected.is_set():
                self.connected.clear()
                log.warning("ARI websocket disconnected")
                if on_disconnect is not None:
                    await on_disconnect()
            if self._stopping.is_set():
                break
            delay = min(self._max_backoff_s, 0.05 * 2**attempt) * random.uniform(0.8, 1.2)
            attempt = min(attempt + 1, 10)
            with contextlib.suppress(TimeoutError):
                await within(self._stopping.wait(), delay)

    def _note_failure(self, error: str) -> None:
        # One line per change of error, not one per retry (retries are frequent).
        if error != self.last_error:
            log.warning("ARI websocket unavailable: %s", error)
        self.last_error = error

    async def _pump(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        on_message: Callable[[JsonDict], Awaitable[None]],
    ) -> None:
        stop_task = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                receive = asyncio.ensure_future(ws.receive())
                done, _ = await asyncio.wait(
                    {receive, stop_task}, return_when=asyncio.FIRST_COMPLETED
                )
                if stop_task in done:
                    receive.cancel()
                    await ws.close()
                    return
                msg = receive.result()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return  # closed, closing or error: reconnect
                try:
                    payload = json.loads(msg.data)
                except json.JSONDecodeError:
                    log.error("ARI sent a non-JSON frame; ignored")
                    continue
                try:
                    await on_message(payload)
                except Exception:
                    # One bad event must not take the whole line down.
                    log.exception("error while handling ARI event %s", payload.get("type"))
        finally:
            stop_task.cancel()
