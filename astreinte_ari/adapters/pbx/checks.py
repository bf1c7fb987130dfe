"""Checks of the PBX shared by `astreinte doctor` and the service's /readyz: is the
application registered, does Asterisk itself answer SIP where callers reach it,
is the trunk reachable. Each check says what it saw and, when it fails, the fix.

Why a SIP probe for the transport: ARI has no transport state. Its sorcery view
(`GET /asterisk/config/dynamic/res_pjsip/transport/<id>`) answers 404 for a
transport that could not bind (measured on 16.28 and 22.10.1), but it needs the
transport's name, which lives in the PBX's pjsip.conf, and it says nothing of
the address callers and the trunk use. An OPTIONS to that address (pbx.sip)
tests exactly that path, and its Server header, compared with the version ARI
reports, tells this Asterisk from another process that took the port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp

from astreinte_ari.adapters.ari.client import AriClient, AriError, AriNotFound
from astreinte_ari.adapters.pbx.sip_probe import SipProbeError, sip_options
from astreinte_ari.aio import within
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.pbx import SipAddress

SIP_TIMEOUT_S = 2.0
ARI_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "name": self.name.lower().replace(" ", "_"),
            "ok": self.ok,
            "detail": self.detail,
        }
        if not self.ok and self.fix:
            data["fix"] = self.fix
        return data


def _sip_fix(address: SipAddress) -> str:
    ss = "ss -lunp" if address.transport == "udp" else "ss -ltnp"
    return (
        f"see who holds the port: {ss} 'sport = :{address.port}'; stop it, or bind "
        "Asterisk's transport elsewhere (pjsip.conf) and set pbx.sip; then restart Asterisk "
        "(its log says \"Transport '...' could not be started\" when the bind failed)"
    )


def _identifies(server: str, version: str | None, expected: str | None) -> bool:
    if expected:
        return server.strip() == expected.strip()
    if version:
        return version in server  # "Asterisk PBX 22.10.1", FreePBX "FPBX-17.0.19(22.10.1)"
    return "asterisk" in server.lower()


async def check_sip_transport(
    config: AppConfig, version: str | None, *, timeout_s: float = SIP_TIMEOUT_S
) -> Check:
    """Asterisk (this version) answers SIP at pbx.sip."""
    name = "SIP transport"
    address = config.pbx.sip_address(config.ari.url)
    if address is None:
        return Check(name, True, "not checked (pbx.sip: off)")
    try:
        reply = await sip_options(address, timeout_s=timeout_s)
    except SipProbeError as exc:
        return Check(
            name,
            False,
            f"{exc}: Asterisk takes no call there (transport not bound, or the port is "
            "held by another process that does not answer)",
            _sip_fix(address),
        )
    answered = f"{address} answered by {reply.server!r} ({reply.status} {reply.reason})"
    if _identifies(reply.server, version, config.pbx.user_agent):
        return Check(name, True, answered)
    this = f"Asterisk {version}" if version else "Asterisk"
    return Check(
        name,
        False,
        f"{address} is answered by {reply.server or 'a server without a Server header'!r}, "
        f"not by this {this}: another process holds the SIP port and Asterisk is deaf",
        _sip_fix(address) + "; if pjsip.conf [global] user_agent hides the version, set "
        "pbx.user_agent to it",
    )


async def sip_problem(
    address: SipAddress, version: str, *, timeout_s: float = SIP_TIMEOUT_S
) -> str | None:
    """None when Asterisk `version` answers SIP at `address`, else what was found there."""
    try:
        reply = await sip_options(address, timeout_s=timeout_s)
    except SipProbeError as exc:
        return f"{exc} (transport not bound? another process may hold the port)"
    if _identifies(reply.server, version, None):
        return None
    return f"{address} is answered by {reply.server!r}, another process"


def trunk_endpoint(dial: str) -> str | None:
    """The PJSIP endpoint every trunk call goes through, when the dial template names
    one: PJSIP/{number}@operator and PJSIP/operator/sip:{number}@host give "operator";
    PJSIP/{number} (one endpoint per number) and other technologies give None."""
    if not dial.startswith("PJSIP/"):
        return None
    rest = dial.removeprefix("PJSIP/")
    if "/" in rest:
        endpoint = rest.split("/", 1)[0]
    else:
        endpoint = rest.rsplit("@", 1)[1] if "@" in rest else rest
    return endpoint if re.fullmatch(r"[^{}/@,]+", endpoint) else None


async def check_trunk(client: AriClient, config: AppConfig) -> Check:
    """The trunk's PJSIP endpoint exists and is not offline (qualify answered)."""
    name = "trunk"
    endpoint = trunk_endpoint(config.trunk.dial)
    if endpoint is None:
        return Check(
            name, True, f"not checked: trunk.dial {config.trunk.dial!r} names no fixed endpoint"
        )
    show = f"asterisk -rx 'pjsip show endpoint {endpoint}'"
    try:
        info = await within(
            client.request("GET", f"/endpoints/PJSIP/{quote(endpoint, safe='')}"), ARI_TIMEOUT_S
        )
    except AriNotFound:
        return Check(
            name,
            False,
            f"endpoint PJSIP/{endpoint} (from trunk.dial) does not exist on this Asterisk",
            "define it in pjsip.conf (see dialplan/pjsip_operator.example.conf), then "
            "asterisk -rx 'module reload res_pjsip.so'",
        )
    except (AriError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        return Check(name, False, f"ARI could not tell: {exc or type(exc).__name__}", show)
    state = str((info or {}).get("state", "unknown"))
    if state == "online":
        return Check(name, True, f"PJSIP/{endpoint} online")
    if state == "offline":
        return Check(
            name,
            False,
            f"PJSIP/{endpoint} is offline: no contact, or its qualify (OPTIONS) gets no "
            "answer; calls to agents' mobiles would fail",
            f"{show}; check the operator's address, registration and network",
        )
    return Check(
        name,
        True,
        f"PJSIP/{endpoint} {state} (not qualified: set qualify_frequency on its AOR to know)",
    )


async def check_sip_endpoints(client: AriClient, config: AppConfig) -> Check:
    """Every SIP endpoint the YAML rings (`sip: desk-101`, `forward: "sip:..."`) exists
    on this Asterisk and is not offline: otherwise its hops fail at once, at night."""
    name = "SIP phones"
    endpoints = sorted(config.sip_endpoints())
    if not endpoints:
        return Check(name, True, "none in the configuration")
    missing: list[str] = []
    offline: list[str] = []
    for endpoint in endpoints:
        try:
            info = await within(
                client.request("GET", f"/endpoints/PJSIP/{quote(endpoint, safe='')}"),
                ARI_TIMEOUT_S,
            )
        except AriNotFound:
            missing.append(endpoint)
            continue
        except (AriError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Check(name, False, f"ARI could not tell: {exc or type(exc).__name__}")
        if str((info or {}).get("state", "unknown")) == "offline":
            offline.append(endpoint)
    if missing:
        return Check(
            name,
            False,
            f"endpoint(s) named in the YAML but not on this Asterisk: {', '.join(missing)}",
            "define them in pjsip.conf (see dialplan/pjsip_operator.example.conf) or fix the "
            "names under `sip:`, then asterisk -rx 'module reload res_pjsip.so'",
        )
    if offline:
        return Check(
            name,
            False,
            f"offline (no registered contact, or qualify unanswered): {', '.join(offline)}; "
            "their hops would fail",
            f"asterisk -rx 'pjsip show endpoint {offline[0]}'; check the phone is registered",
        )
    return Check(name, True, f"{len(endpoints)} endpoint(s) present: {', '.join(endpoints)}")


async def check_application(client: AriClient, app: str) -> Check:
    """The ARI application is registered (a websocket is subscribed to it)."""
    name = "application"
    try:
        await within(client.request("GET", f"/applications/{quote(app, safe='')}"), ARI_TIMEOUT_S)
    except AriNotFound:
        return Check(
            name,
            False,
            f"ARI application {app!r} is not registered: Stasis({app}) fails and calls go to "
            "the dialplan fallback",
            "wait for the websocket to reconnect; if it does not, see the service's log",
        )
    except (AriError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        return Check(name, False, f"ARI could not tell: {exc or type(exc).__name__}")
    return Check(name, True, f"ARI application {app!r} registered")
