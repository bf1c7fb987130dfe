"""SIP replies for tests, and a SIP server that is not Asterisk: what a PBX meets when
another process took its SIP port first (its transport then fails to bind)."""

from __future__ import annotations

import socket
import threading


def sip_reply(request: bytes, status: str, server: str | None) -> bytes:
    """A reply echoing Via/From/To/Call-ID/CSeq of `request`, as a SIP server does."""
    head = request.decode().split("\r\n\r\n")[0].split("\r\n")
    keep = [h for h in head[1:] if h.split(":")[0] in ("Via", "From", "To", "Call-ID", "CSeq")]
    lines = [f"SIP/2.0 {status}", *keep]
    if server is not None:
        lines.append(f"Server: {server}")
    return ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode()


class SipImpostor:
    """Holds a UDP port on 127.0.0.1 and answers OPTIONS as `server` (None: stays silent)."""

    def __init__(self, server: str | None = "FakeSIP/1.0") -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.requests += 1
            if self.server is not None and data.startswith(b"OPTIONS "):
                self.sock.sendto(sip_reply(data, "200 OK", self.server), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
