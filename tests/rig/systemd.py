"""Stand-ins for what systemd gives a Type=notify service: a unix datagram socket
receiving its sd_notify messages (NOTIFY_SOCKET), each stamped on arrival."""

from __future__ import annotations

import socket
import threading
import time
import uuid


class FakeSystemd:
    """A bound AF_UNIX datagram socket; a thread stamps each datagram on arrival.
    `address` is a path, or None for a fresh name in the abstract namespace;
    `env_value` is what NOTIFY_SOCKET must say to reach it."""

    def __init__(self, address: str | None = None) -> None:
        if address is None:
            address = f"\0astreinte-test-{uuid.uuid4().hex}"
        self.env_value = "@" + address[1:] if address.startswith("\0") else address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.received: list[tuple[float, str]] = []  # (time.monotonic(), message)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data.decode()))

    def messages(self) -> list[str]:
        return [m for _, m in self.received]

    def wait_for(self, text: str, timeout: float = 5.0, after: float = 0.0) -> str:
        """The first message containing `text` received after monotonic time `after`."""
        deadline = time.monotonic() + timeout
        while True:
            for at, message in list(self.received):
                if at > after and text in message:
                    return message
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s: {self.messages()}"
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self) -> FakeSystemd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
