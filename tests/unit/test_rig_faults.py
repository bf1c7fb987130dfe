"""Fault injectors of tests/rig: the TCP proxy on real sockets (HTTP and a websocket
through aiohttp, as ARI uses them), freeze, full_disk, database_down."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
from aiohttp import web

from tests.rig.faults import TcpProxy, database_down, freeze, full_disk
from tests.rig.faults import _state as process_state
from tests.rig.postgres import stoppable_postgres


class _AriLike:
    """A local aiohttp server with ARI's two kinds of traffic: REST and an event websocket."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _start(self) -> web.AppRunner:
        app = web.Application(client_max_size=8_000_000)
        app.router.add_get("/ari/asterisk/info", self._info)
        app.router.add_get("/ari/events", self._events)
        app.router.add_post("/echo", self._echo)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response({"system": {"version": "16"}, "echo": request.query.get("q")})

    async def _echo(self, request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def _events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str("event:" + message.data)
        return ws

    def __enter__(self) -> _AriLike:
        self.thread.start()
        self.runner = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def ari_like() -> Iterator[_AriLike]:
    with _AriLike() as server:
        yield server


async def test_proxy_relays_rest_and_websocket_and_cuts_both(ari_like: _AriLike) -> None:
    with TcpProxy(ari_like.port) as proxy:
        async with aiohttp.ClientSession(proxy.url) as http:
            async with http.get("/ari/asterisk/info", params={"q": "é"}) as resp:
                assert (await resp.json())["echo"] == "é"
            blob = os.urandom(3_000_000)  # bytes unchanged both ways, in many reads
            async with http.post("/echo", data=blob) as resp:
                assert await resp.read() == blob
            ws = await http.ws_connect("/ari/events")
            await ws.send_str("StasisStart")
            assert (await ws.receive_str(timeout=5)) == "event:StasisStart"
            assert proxy.open_connections >= 1

            outage = proxy.cut()  # the long-lived websocket breaks at once
            message = await ws.receive(timeout=5)
            assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert outage.closed >= 1 and proxy.open_connections == 0
            with pytest.raises((aiohttp.ClientError, OSError)):  # a new one is refused
                await http.ws_connect("/ari/events", timeout=aiohttp.ClientWSTimeout(ws_close=2))
            with pytest.raises((aiohttp.ClientError, OSError)):
                async with http.get("/ari/asterisk/info") as resp:
                    await resp.read()

            restored = proxy.restore()
            assert restored is outage and outage.refused >= 2
            assert outage.seconds is not None and outage.seconds >= 0
            assert outage.restored_at is not None and outage.restored_at >= outage.cut_at
            ws = await http.ws_connect("/ari/events")
            await ws.send_str("again")
            assert (await ws.receive_str(timeout=5)) == "event:again"
            await ws.close()


def test_proxy_outage_context_restores_even_on_error(ari_like: _AriLike) -> None:
    with TcpProxy(ari_like.port) as proxy:
        with pytest.raises(RuntimeError), proxy.outage(graceful=True):
            raise RuntimeError("test body failed")
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"GET /ari/asterisk/info HTTP/1.0\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.0 200")
        assert len(proxy.outages) == 1 and proxy.outages[0].restored_at is not None


def test_proxy_resets_at_once_when_the_target_is_down() -> None:
    dead_port = socket.create_server(("127.0.0.1", 0)).getsockname()[1]  # closed again
    with TcpProxy(dead_port) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.settimeout(5)
        with pytest.raises(ConnectionResetError):
            s.sendall(b"x")
            if not s.recv(10):
                raise ConnectionResetError("closed")


def test_freeze_stops_the_whole_group_and_thaws_it() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & exec sleep 30"], start_new_session=True)
    try:
        with freeze(proc.pid) as window:
            assert process_state(proc.pid) == "T"
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            group = [proc.pid] + [int(p) for p in children.read_text().split()]
            assert all(process_state(pid) in ("T", "") for pid in group)
        assert process_state(proc.pid) in ("S", "R", "D")  # D: briefly, on I/O
        assert window.seconds is not None and window.ended_at is not None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@needs_root
def test_full_disk_raises_enospc_and_is_unmounted_after(tmp_path: Path) -> None:
    target = tmp_path / "recordings"
    with full_disk(target, size_kb=256) as disk:
        assert os.path.ismount(target) and disk.free_bytes() == 0
        with pytest.raises(OSError) as exc, open(target / "new.wav", "wb") as out:
            out.write(b"RIFF")
            out.flush()
        assert exc.value.errno == errno.ENOSPC
        disk.make_room()
        assert disk.free_bytes() > 0 and disk.window.ended_at is not None
        (target / "after.wav").write_bytes(b"x" * 1000)
    assert not os.path.ismount(target) and not list(target.iterdir())


@needs_root
def test_full_disk_is_unmounted_when_the_test_fails_with_a_file_open(tmp_path: Path) -> None:
    target = tmp_path / "rec"
    with pytest.raises(AssertionError), full_disk(target, size_kb=128):
        held = open(target / "held", "wb")  # noqa: SIM115 - a writer still has it open
        raise AssertionError("the test body failed")
    assert not os.path.ismount(target)  # detached lazily despite the open file
    held.close()


@pytest.mark.postgres
def test_database_down_stops_and_restarts_postgres(tmp_path: Path) -> None:
    with stoppable_postgres(tmp_path) as pg:
        dsn = pg.url.replace("postgresql+psycopg", "postgresql")
        with database_down(pg) as window, pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2).close()
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert window.seconds is not None and window.seconds > 0
