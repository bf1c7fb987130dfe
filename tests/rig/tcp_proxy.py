"""A TCP proxy that can cut the line: put it between the service and ARI.

`TcpProxy(target_port).start()` listens on a free 127.0.0.1 port and relays
every connection to the target, bytes unchanged both ways, so ARI's HTTP
requests and its long-lived websocket pass through as they are. `cut()`
resets every open connection at once (RST to both sides, like a crashed
middlebox; `graceful=True` sends FIN instead) and, until `restore()`, resets
each new connection as soon as it is accepted (the client sees "connection
reset"; the port stays ours, so nothing else can take it meanwhile).

It runs its own asyncio loop in its own thread: the test's blocking calls
(subprocess waits, sleeps, sqlite) release the GIL and cannot stall it.
Each cut is recorded with wall-clock and monotonic times.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

_T = TypeVar("_T")

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


@dataclass
class Outage:
    """One cut of the proxy: when it began and ended, what it broke."""

    cut_at: datetime
    cut_mono: float
    closed: int  # connections open at the cut
    restored_at: datetime | None = None
    restored_mono: float | None = None
    refused: int = 0  # connections reset on arrival during the cut

    @property
    def seconds(self) -> float | None:
        if self.restored_mono is None:
            return None
        return self.restored_mono - self.cut_mono


def _reset(writer: asyncio.StreamWriter, graceful: bool) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None and not graceful:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    if graceful:
        writer.close()
    else:
        writer.transport.abort()


class TcpProxy:
    """See the module doc. Use as a context manager, or start()/stop()."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.outages: list[Outage] = []
        self.accepted = 0  # connections relayed so far
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._cut = False

    # -- control, from the test's thread ------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>, e.g. for the service's ari.url."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def cut(self, *, graceful: bool = False) -> Outage:
        """Close every open connection at once and refuse new ones until restore()."""
        return self._call(self._do_cut(graceful))

    def restore(self) -> Outage:
        """Let connections through again; returns the finished outage."""
        return self._call(self._do_restore())

    @contextlib.contextmanager
    def outage(self, *, graceful: bool = False) -> Iterator[Outage]:
        """`with proxy.outage() as out:` cut on entry, restore on exit (even on error)."""
        record = self.cut(graceful=graceful)
        try:
            yield record
        finally:
            self.restore()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- the loop's side -----------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            for writer in pair:
                _reset(writer, graceful=True)
        self._pairs.clear()

    async def _do_cut(self, graceful: bool) -> Outage:
        self._cut = True
        pairs, self._pairs = list(self._pairs), set()
        for pair in pairs:
            for writer in pair:
                _reset(writer, graceful)
        record = Outage(datetime.now(UTC), time.monotonic(), closed=len(pairs))
        self.outages.append(record)
        return record

    async def _do_restore(self) -> Outage:
        self._cut = False
        record = self.outages[-1]
        record.restored_at, record.restored_mono = datetime.now(UTC), time.monotonic()
        return record

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.outages[-1].refused += 1
            _reset(writer, graceful=False)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer, graceful=False)  # target down: the client sees it at once
            return
        if self._cut:  # cut while we were connecting
            _reset(writer, graceful=False)
            _reset(up_writer, graceful=False)
            return
        self.accepted += 1
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, pair), self._pump(up_reader, writer, pair)
            )
        finally:
            self._pairs.discard(pair)
            for w in pair:
                w.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if pair in self._pairs and writer.can_write_eof():
                writer.write_eof()  # half-close, as the peer did
        except (ConnectionError, OSError):
            if pair in self._pairs:  # one side broke: break the other too
                self._pairs.discard(pair)
                for w in pair:
                    _reset(w, graceful=False)
