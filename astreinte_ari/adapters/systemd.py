"""sd_notify(3) without libsystemd: under a `Type=notify` unit, tell systemd when the
service is ready, what it is waiting for (STATUS=, shown by `systemctl status`),
that it is stopping, and that its event loop is alive (WatchdogSec=).

The protocol is one datagram of newline-separated `KEY=value` lines to the unix
socket named by $NOTIFY_SOCKET (a leading `@` means the abstract namespace).
Outside systemd the variable is unset and every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _socket_address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # e.g. vsock: (systemd 254+ in VMs): not needed on a PBX host


class SystemdNotifier:
    """Sends sd_notify messages; never raises (supervision must not take calls down)."""

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        address = _socket_address(raw) if raw else None
        if raw and address is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket: systemd not notified", raw)
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # sd_watchdog_enabled(3): the watchdog is for WATCHDOG_PID only, when it is set.
        mine = not pid or (pid.isdigit() and int(pid) == os.getpid())
        watchdog = int(usec) if usec.isdigit() and int(usec) > 0 and mine else None
        return cls(address, watchdog_usec=watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1: half the timeout, as sd_watchdog_enabled(3) advises."""
        if not self.enabled or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def notify(self, *assignments: str) -> bool:
        if self.address is None:
            return False
        data = "\n".join(a.replace("\n", " ") for a in assignments).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._sock.sendto(data, self.address)
        except OSError as exc:  # systemd gone, queue full: say so once, keep running
            if not self._warned:
                log.warning("systemd notification failed (%s): %s", self.address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def keep_watchdog(notifier: SystemdNotifier) -> None:
    """WATCHDOG=1 every half timeout, from the event loop itself: a loop that is blocked
    or starved sends nothing, and systemd restarts the process (WatchdogSec=). A thread
    would keep pinging for a frozen loop; this task cannot."""
    interval = notifier.watchdog_interval_s
    if interval is None:
        return
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval)
