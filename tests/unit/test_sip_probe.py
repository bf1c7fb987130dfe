"""The SIP OPTIONS probe against real local sockets, and what the SIP transport check
concludes from it: this Asterisk, another SIP server holding the port, or nobody."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from astreinte_ari.adapters.pbx.checks import check_sip_transport, trunk_endpoint
from astreinte_ari.adapters.pbx.sip_probe import SipProbeError, sip_options
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.pbx import PbxConfig, SipAddress, parse_sip_address
from tests.rig.sip_impostor import sip_reply


class FakeSipServer(asyncio.DatagramProtocol):
    """A UDP SIP server: answers OPTIONS with `status` and a Server header; can ignore
    the first requests (to force a retransmission), and sends noise first."""

    def __init__(self, status: str = "200 OK", server: str | None = "Asterisk PBX 22.10.1") -> None:
        self.status = status
        self.server = server
        self.ignore = 0
        self.requests: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests.append(data)
        if len(self.requests) <= self.ignore:
            return
        assert self.transport is not None
        stray = data.replace(b"Call-ID: ", b"Call-ID: other-")  # someone else's transaction
        self.transport.sendto(sip_reply(stray, "200 OK", "Other"), addr)
        self.transport.sendto(sip_reply(data, "100 Trying", self.server), addr)
        self.transport.sendto(sip_reply(data, self.status, self.server), addr)


@contextlib.asynccontextmanager
async def sip_server(**kwargs: object) -> AsyncIterator[tuple[FakeSipServer, SipAddress]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: FakeSipServer(**kwargs),  # type: ignore[arg-type]
        local_addr=("127.0.0.1", 0),
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        yield proto, SipAddress("udp", "127.0.0.1", port)
    finally:
        transport.close()


async def test_probe_returns_the_final_answer_and_its_server() -> None:
    async with sip_server() as (server, address):
        reply = await sip_options(address, timeout_s=2)
    assert (reply.status, reply.reason, reply.server) == (200, "OK", "Asterisk PBX 22.10.1")
    request = server.requests[0].decode()
    assert request.startswith(f"OPTIONS sip:127.0.0.1:{address.port} SIP/2.0\r\n")
    assert "User-Agent: astreinte-ari/" in request


async def test_probe_retransmits_over_udp() -> None:
    async with sip_server(status="401 Unauthorized") as (server, address):
        server.ignore = 1
        started = time.monotonic()
        reply = await sip_options(address, timeout_s=3)
    assert reply.status == 401 and len(server.requests) == 2
    assert 0.4 < time.monotonic() - started < 1.5


async def test_a_port_held_by_a_silent_socket_gives_nosip_reply() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        address = SipAddress("udp", "127.0.0.1", holder.getsockname()[1])
        started = time.monotonic()
        silent = r"no SIP answer from udp:127\.0\.0\.1:\d+ within 0\.8 s"
        with pytest.raises(SipProbeError, match=silent):
            await sip_options(address, timeout_s=0.8)
        assert time.monotonic() - started < 1.5
        assert len(holder.recv(4096)) > 0  # the probe did reach it


async def test_a_closed_port_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SipProbeError, match=r"nothing listens|no SIP answer"):
        await sip_options(SipAddress("udp", "127.0.0.1", port), timeout_s=1)


async def test_probe_over_tcp() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(sip_reply(request, "100 Trying", None) + sip_reply(request, "200 OK", "PBX 1"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reply = await sip_options(SipAddress("tcp", "127.0.0.1", port), timeout_s=2)
    assert (reply.status, reply.server) == (200, "PBX 1")


def test_sip_address_setting() -> None:
    assert parse_sip_address("udp:127.0.0.1:5060") == SipAddress("udp", "127.0.0.1", 5060)
    assert str(parse_sip_address("tcp:[::1]:5070")) == "tcp:[::1]:5070"
    for bad in ("127.0.0.1:5060", "tls:pbx:5061", "udp:pbx:70000", "udp:pbx"):
        with pytest.raises(ValueError):
            parse_sip_address(bad)
    assert PbxConfig().sip_address("https://pbx.example.net:8089") == SipAddress(
        "udp", "pbx.example.net", 5060
    )
    assert PbxConfig(sip=False).sip_address("http://127.0.0.1:8088") is None  # YAML `off`
    assert PbxConfig(sip="off").sip_address("http://127.0.0.1:8088") is None


def _config(tmp_path: Path, pbx: str) -> AppConfig:
    path = tmp_path / "astreinte.yaml"
    path.write_text(
        "timezone: Europe/Paris\n"
        "ari: {url: http://127.0.0.1:8088, username: astreinte}\n"
        f"{pbx}\n"
        'trunk: {dial: "PJSIP/{number}@operator", caller_id: "+33180000000", '
        'allowed_prefixes: ["+336"]}\n'
        'lines: {"+33180000000": {name: M, team: t, after_hours: '
        "{hops: [{person: a, timeout: 20}]}}}\n"
        'teams: {t: {people: {a: {name: A, mobile: "+33612345678"}}}}\n'
    )
    return load_config(path)


def test_a_yaml_off_turns_the_probe_off(tmp_path: Path) -> None:
    assert _config(tmp_path, "pbx: {sip: off}").pbx.sip_address("http://127.0.0.1:8088") is None
    assert _config(tmp_path, "").pbx.sip_address("http://127.0.0.1:8088") == SipAddress(
        "udp", "127.0.0.1", 5060
    )


@pytest.mark.parametrize(
    ("server", "user_agent", "ok"),
    [
        ("Asterisk PBX 22.10.1", None, True),
        ("FPBX-17.0.19(22.10.1)", None, True),  # FreePBX's user_agent names the version
        ("Asterisk PBX 16.28.0", None, False),  # another Asterisk took the port
        ("FakeSIP/1.0", None, False),
        (None, None, False),
        ("PBX", "PBX", True),  # an admin who hides the version says what to expect
    ],
)
async def test_the_transport_check_tells_this_asterisk_from_another_server(
    tmp_path: Path, server: str | None, user_agent: str | None, ok: bool
) -> None:
    async with sip_server(server=server) as (_, address):
        ua = f", user_agent: {user_agent}" if user_agent else ""
        config = _config(tmp_path, f'pbx: {{sip: "{address}"{ua}}}')
        check = await check_sip_transport(config, "22.10.1")
    assert check.ok is ok, check
    if not ok:
        assert "not by this Asterisk 22.10.1" in check.detail
        assert f"ss -lunp 'sport = :{address.port}'" in check.fix


async def test_the_transport_check_says_asterisk_takes_no_call_when_nobody_answers(
    tmp_path: Path,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        config = _config(tmp_path, f'pbx: {{sip: "udp:127.0.0.1:{holder.getsockname()[1]}"}}')
        check = await check_sip_transport(config, "22.10.1", timeout_s=0.6)
    assert not check.ok and "Asterisk takes no call there" in check.detail, check


@pytest.mark.parametrize(
    ("dial", "endpoint"),
    [
        ("PJSIP/{number}@operator", "operator"),
        ("PJSIP/operator/sip:{number}@192.0.2.1", "operator"),
        ("PJSIP/{number}", None),
        ("SIP/{number}@operator", None),
        ("Local/{number}@outbound", None),
    ],
)
def test_the_trunk_endpoint_of_a_dial_template(dial: str, endpoint: str | None) -> None:
    assert trunk_endpoint(dial) == endpoint
