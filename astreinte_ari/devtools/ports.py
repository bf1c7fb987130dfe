"""Free loopback ports, picked at run time: every test, rig and the demo phone
take theirs here (localpbx.py re-exports them where most importers look)."""

from __future__ import annotations

import contextlib
import random
import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, kind)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_rtp_range(size: int) -> tuple[int, int]:
    """A random block of UDP ports below Linux's ephemeral range whose ends are free.

    Two rigs on one machine then rarely share a block, and Asterisk steps over a
    port that is taken anyway (it tries the next pair)."""
    rng = random.SystemRandom()
    for _ in range(50):
        start = rng.randrange(10000, 32768 - size, 2)
        if all(udp_free(port) for port in (start, start + size // 2, start + size - 2)):
            return start, start + size - 1
    raise RuntimeError(f"no free block of {size} UDP ports between 10000 and 32767")


def udp_free(port: int) -> bool:
    """Whether `port` can be bound on the loopback for UDP right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
