"""Where the PBX takes SIP: what `astreinte doctor` and /readyz probe to know that
Asterisk itself, and not another process, answers there. A PJSIP transport that
could not bind ("Address already in use") leaves Asterisk running and ARI happy,
but deaf: no call can reach it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import field_validator

from astreinte_ari.config.fields import Frozen

DEFAULT_SIP_PORT = 5060
_SIP_RE = re.compile(r"^(udp|tcp):(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class SipAddress:
    transport: str  # "udp" or "tcp"
    host: str  # name or address, IPv6 without brackets
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def parse_sip_address(value: str) -> SipAddress:
    m = _SIP_RE.match(value)
    if not m or not 1 <= int(m.group(3)) <= 65535:
        raise ValueError(f"'{value}' is not like udp:127.0.0.1:5060 or tcp:pbx.example.net:5060")
    return SipAddress(m.group(1), m.group(2).strip("[]"), int(m.group(3)))


class PbxConfig(Frozen):
    # The SIP address probed with OPTIONS, e.g. "udp:127.0.0.1:5060" (udp or tcp).
    # Default: UDP 5060 on the host of ari.url. "off": not probed (SIP over TLS or
    # websockets only).
    sip: str | None = None
    # The Server header Asterisk sends (pjsip.conf [global] user_agent). Default:
    # any header that names the version ARI reports ("Asterisk PBX 22.10.1",
    # FreePBX's "FPBX-17.0.19(22.10.1)"); set it if user_agent hides the version.
    user_agent: str | None = None

    @field_validator("sip", mode="before")
    @classmethod
    def _sip(cls, value: Any) -> Any:
        if value is False:  # YAML reads a bare `off` as false
            return "off"
        if isinstance(value, str) and value != "off":
            parse_sip_address(value)
        return value

    def sip_address(self, ari_url: str) -> SipAddress | None:
        """What to probe; None when probing is off."""
        if self.sip == "off":
            return None
        if self.sip is None:
            return SipAddress("udp", urlsplit(ari_url).hostname or "127.0.0.1", DEFAULT_SIP_PORT)
        return parse_sip_address(self.sip)
