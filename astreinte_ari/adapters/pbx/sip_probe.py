"""A SIP OPTIONS probe (RFC 3261 section 11): does something answer SIP at an address,
and which server is it (its Server or User-Agent header)?

Any final answer counts, 401 included: Asterisk challenges a request from an
address no `identify` maps to an endpoint (and logs a NOTICE "No matching
endpoint found"), but its reply still carries its Server header.
"""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from dataclasses import dataclass

import astreinte_ari
from astreinte_ari.aio import within
from astreinte_ari.config.pbx import SipAddress

T1_S = 0.5  # RFC 3261 retransmission timer over UDP, doubled at each retry
_STATUS_RE = re.compile(r"^SIP/2\.0 (\d{3}) ?(.*)$")


@dataclass(frozen=True, slots=True)
class SipReply:
    status: int
    reason: str
    server: str  # the Server header, else User-Agent; "" when neither is sent


class SipProbeError(Exception):
    """No SIP answer; the message says what happened."""


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def options_request(target: SipAddress, local: tuple[str, int], call_id: str) -> bytes:
    token = uuid.uuid4().hex
    uri = f"sip:{_uri_host(target.host)}:{target.port}"
    if target.transport == "tcp":
        uri += ";transport=tcp"
    via_host = f"{_uri_host(local[0])}:{local[1]}"
    lines = [
        f"OPTIONS {uri} SIP/2.0",
        f"Via: SIP/2.0/{target.transport.upper()} {via_host};branch=z9hG4bK{token[:16]};rport",
        "Max-Forwards: 70",
        f"From: <sip:astreinte-probe@{_uri_host(local[0])}>;tag={token[16:24]}",
        f"To: <{uri}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"User-Agent: astreinte-ari/{astreinte_ari.__version__} (readiness probe)",
        "Accept: application/sdp",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_reply(data: bytes, call_id: str) -> SipReply | None:
    """The reply to our request (same Call-ID), or None for anything else."""
    head = data.decode("utf-8", "replace").split("\r\n\r\n", 1)[0]
    lines = re.split(r"\r?\n", head)
    m = _STATUS_RE.match(lines[0])
    if m is None:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    if (headers.get("call-id") or headers.get("i")) != call_id:
        return None
    server = headers.get("server") or headers.get("user-agent") or ""
    return SipReply(int(m.group(1)), m.group(2).strip(), server)


class _UdpProbe(asyncio.DatagramProtocol):
    def __init__(self, call_id: str, done: asyncio.Future[SipReply]) -> None:
        self.call_id = call_id
        self.done = done

    def datagram_received(self, data: bytes, addr: object) -> None:
        reply = parse_reply(data, self.call_id)
        if reply is not None and reply.status >= 200 and not self.done.done():
            self.done.set_result(reply)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable
        if not self.done.done():
            self.done.set_exception(exc)


async def _udp(
    target: SipAddress, sockaddr: tuple[str, int], family: int, timeout_s: float
) -> SipReply:
    loop = asyncio.get_running_loop()
    call_id = f"{uuid.uuid4().hex}@astreinte-probe"
    done: asyncio.Future[SipReply] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UdpProbe(call_id, done), remote_addr=sockaddr, family=family
    )
    try:
        local = transport.get_extra_info("sockname")
        request = options_request(target, (local[0], local[1]), call_id)
        deadline = loop.time() + timeout_s
        interval = T1_S
        while True:
            transport.sendto(request)
            wait = min(interval, deadline - loop.time())
            if wait <= 0:
                raise TimeoutError
            try:
                return await within(asyncio.shield(done), wait)
            except TimeoutError:
                interval *= 2
    finally:
        transport.close()


async def _tcp(target: SipAddress, sockaddr: tuple[str, int], timeout_s: float) -> SipReply:
    call_id = f"{uuid.uuid4().hex}@astreinte-probe"
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(sockaddr[0], sockaddr[1])
        try:
            local = writer.get_extra_info("sockname")
            writer.write(options_request(target, (local[0], local[1]), call_id))
            await writer.drain()
            while True:  # skip provisional replies (100 Trying)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                if length:
                    await reader.readexactly(int(length.group(1)))
                reply = parse_reply(head, call_id)
                if reply is not None and reply.status >= 200:
                    return reply
        finally:
            writer.close()


async def sip_options(target: SipAddress, *, timeout_s: float = 2.0) -> SipReply:
    """Send OPTIONS to `target` and return the final reply; SipProbeError otherwise."""
    loop = asyncio.get_running_loop()
    kind = socket.SOCK_DGRAM if target.transport == "udp" else socket.SOCK_STREAM
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=kind)
    except OSError as exc:
        raise SipProbeError(f"cannot resolve {target.host!r}: {exc}") from exc
    family, _, _, _, sockaddr = infos[0]
    where = str(target)
    try:
        if target.transport == "udp":
            return await _udp(target, (sockaddr[0], sockaddr[1]), family, timeout_s)
        return await _tcp(target, (sockaddr[0], sockaddr[1]), timeout_s)
    except TimeoutError as exc:
        raise SipProbeError(f"no SIP answer from {where} within {timeout_s:g} s") from exc
    except ConnectionRefusedError as exc:
        raise SipProbeError(f"nothing listens on {where} (connection refused)") from exc
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise SipProbeError(f"SIP probe of {where} failed: {exc or type(exc).__name__}") from exc
