"""A real local HTTP server standing in for a ticketing tool, Slack, Teams and Matrix.

Each path answers from a script of (status, headers) replies, then 200; every
request is recorded with its arrival time (monotonic) and its raw body.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from astreinte_ari.devtools.localpbx import free_port


@dataclass
class Received:
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the server answered

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    base: str
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str], str]]] = field(default_factory=dict)

    def answer(self, path: str, *replies: tuple[int, dict[str, str]]) -> None:
        """The next replies of `path`, in order (then 200)."""
        self.script.setdefault(path, []).extend(
            (s, h, "ok" if s < 300 else "no") for s, h in replies
        )

    def answer_json(self, path: str, status: int, body: str) -> None:
        self.script.setdefault(path, []).append(
            (status, {"Content-Type": "application/json"}, body)
        )

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    box = Receiver(f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        queued = box.script.get(request.path) or []
        status, headers, text = queued.pop(0) if queued else (200, {}, "ok")
        box.requests.append(
            Received(
                time.monotonic(),
                request.method,
                request.path,
                dict(request.headers),
                body,
                status,
            )
        )
        return web.Response(status=status, headers=headers, text=text)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield box
    finally:
        await runner.cleanup()
