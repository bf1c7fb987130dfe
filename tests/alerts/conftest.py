"""Real local servers for alert tests: aiosmtpd (STARTTLS + auth), an HTTP SMS gateway."""

from __future__ import annotations

import asyncio
import email
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from astreinte_ari.devtools.localpbx import free_port

SMTP_USER, SMTP_PASSWORD = "astreinte", "smtp-secret-for-tests"


class FakeClock:
    """Injected clock: starts at the real time, moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@dataclass
class Mailbox:
    host: str
    port: int
    ca_file: Path
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def smtp_yaml(self) -> str:
        """The `alerting.smtp` section that sends to this mailbox (STARTTLS, login)."""
        return f"""  smtp:
    host: 127.0.0.1
    port: {self.port}
    starttls: true
    username: astreinte
    password_env: TEST_SMTP_PASSWORD
    sender: astreinte@example.test
    ca_file: "{self.ca_file}"
"""


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.box.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def mailbox(tls_files: tuple[Path, Path]) -> Iterator[Mailbox]:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox("127.0.0.1", free_port(), cert)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            box.logins.append(data.login.decode())
        return AuthResult(success=ok)

    controller = Controller(
        _Handler(box),
        hostname=box.host,
        port=box.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class SmsGateway:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0  # answer 503 to this many requests first

    def texts_to(self, number: str) -> list[str]:
        return [r["text"] for r in self.requests if r.get("to") == number and r["ok"]]


@pytest.fixture
async def sms_gateway() -> AsyncIterator[SmsGateway]:
    port = free_port()
    gateway = SmsGateway(f"http://127.0.0.1:{port}/send")

    async def send(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == "Bearer gw-token"
        body = await request.json()
        ok = gateway.fail_next <= 0
        gateway.fail_next -= 1
        gateway.requests.append({**body, "ok": ok})
        if not ok:
            return web.json_response({"status": "busy"}, status=503)
        return web.json_response({"status": "queued"})

    app = web.Application()
    app.add_routes([web.post("/send", send)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield gateway
    finally:
        await runner.cleanup()


async def settle() -> None:
    await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def _alert_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets come from the environment, as in production."""
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("TEST_SMS_TOKEN", "gw-token")


from tests.alerts.webhook_receiver import receiver  # noqa: E402, F401  (fixture for webhook tests)
