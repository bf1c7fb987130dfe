"""The ARI websocket against a real local HTTP server: refused credentials are fatal
and loud; a PBX that answers again is reconnected at once, not after a long backoff."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web

from astreinte_ari.adapters.ari.client import AriAuthError, AriClient
from astreinte_ari.devtools.localpbx import free_port


class FakeAri:
    """/ari/events as a websocket that the test can refuse (401), drop or serve."""

    def __init__(self) -> None:
        self.refuse_login = False
        self.up = asyncio.Event()
        self.up.set()
        self.connections = 0
        self._sockets: list[web.WebSocketResponse] = []

    async def events(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_login:
            return web.Response(status=401, text="Authentication required")
        if not self.up.is_set():
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self._sockets.append(ws)
        async for msg in ws:
            if msg.type == WSMsgType.CLOSE:
                break
        return ws

    async def drop_all(self) -> None:
        for ws in self._sockets:
            await ws.close()
        self._sockets.clear()


@pytest.fixture
async def ari() -> AsyncIterator[tuple[FakeAri, str]]:
    fake = FakeAri()
    app = web.Application()
    app.router.add_get("/ari/events", fake.events)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _ignore(data: object) -> None:
    pass


async def test_refused_credentials_stop_the_event_loop_with_a_clear_error(
    ari: tuple[FakeAri, str],
) -> None:
    fake, url = ari
    fake.refuse_login = True
    client = AriClient(url, "astreinte", "wrong", "astreinte")
    try:
        with pytest.raises(AriAuthError, match="refused the ARI login of user 'astreinte'"):
            await asyncio.wait_for(client.run_events(_ignore, _noop), 5)
    finally:
        await client.close()


async def _noop() -> None:
    pass


async def test_reconnects_within_a_second_of_the_pbx_answering_again(
    ari: tuple[FakeAri, str],
) -> None:
    fake, url = ari
    connects: list[float] = []
    loop = asyncio.get_running_loop()

    async def on_connect() -> None:
        connects.append(loop.time())

    client = AriClient(url, "astreinte", "secret", "astreinte")
    task = asyncio.create_task(client.run_events(_ignore, on_connect))
    try:
        while not connects:
            await asyncio.sleep(0.01)
        fake.up.clear()  # the PBX's HTTP side answers 503 for a while
        await fake.drop_all()
        await asyncio.sleep(3.0)  # several failed attempts: the backoff has grown
        back = loop.time()
        fake.up.set()
        while len(connects) < 2:
            await asyncio.sleep(0.01)
        assert connects[1] - back < 1.2, "reconnect must follow the PBX within about 1 s"
        assert client.reconnects == 1
    finally:
        client.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
