"""Faults to inject around a running service: freeze, crash, full disk, database down,
ARI line cut (TcpProxy, in tcp_proxy.py).

Each is a context manager that undoes the fault on exit, even when the test
body fails, and yields a `Window` saying when the fault began and ended (wall
clock for comparing with trail/wire times, monotonic for durations).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from tests.rig.postgres import PostgresHandle
from tests.rig.tcp_proxy import Outage, TcpProxy

__all__ = [
    "Outage",
    "TcpProxy",
    "Window",
    "crashed",
    "database_down",
    "freeze",
    "full_disk",
]


@dataclass
class Window:
    """When a fault was in force."""

    kind: str
    began_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    began_mono: float = field(default_factory=time.monotonic)
    ended_at: datetime | None = None
    ended_mono: float | None = None

    def end(self) -> None:
        self.ended_at, self.ended_mono = datetime.now(UTC), time.monotonic()

    @property
    def seconds(self) -> float | None:
        return None if self.ended_mono is None else self.ended_mono - self.began_mono


def _state(pid: int) -> str:
    """The process state letter from /proc (R, S, T = stopped, Z...); '' if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2]


def _wait_state(pid: int, stopped: bool, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(pid)
        if state == "" or (state in "Tt") == stopped:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not {'stop' if stopped else 'resume'} in {timeout}s")


@contextlib.contextmanager
def freeze(pid: int, *, group: bool = True) -> Iterator[Window]:
    """SIGSTOP the process (its whole group: the service is started in its own session,
    so its pid is its group id) until exit, then SIGCONT. Returns once it is really
    stopped (/proc says T), so what the test does next happens while it is frozen."""
    send = os.killpg if group else os.kill
    send(pid, signal.SIGSTOP)
    _wait_state(pid, stopped=True)
    window = Window("frozen")
    try:
        yield window
    finally:
        with contextlib.suppress(ProcessLookupError):
            send(pid, signal.SIGCONT)
        _wait_state(pid, stopped=False)
        window.end()


class Restartable(Protocol):
    """What crashed() needs of a service (tests/e2e/rig.py's ServiceProcess fits)."""

    def signal(self, sig: int) -> None: ...

    def start(self, timeout: float = 20.0) -> None: ...


@contextlib.contextmanager
def crashed(service: Restartable, *, restart: bool = True) -> Iterator[Window]:
    """kill -9 the service on entry; start it again on exit (its start() waits until ready).
    The window ends when the new process is ready, so a test can hang callers up
    "during the restart" by doing so at the end of the with-block."""
    service.signal(signal.SIGKILL)
    window = Window("service down")
    try:
        yield window
    finally:
        if restart:
            service.start()
        window.end()


@contextlib.contextmanager
def database_down(pg: PostgresHandle) -> Iterator[Window]:
    """Stop the private PostgreSQL server (tests/rig/postgres.py) until exit."""
    pg.stop()
    window = Window("database down")
    try:
        yield window
    finally:
        pg.start()
        window.end()


@dataclass
class FullDisk:
    """A full tmpfs mounted over `path` (see full_disk)."""

    path: Path
    filler: Path
    window: Window

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def make_room(self) -> None:
        """Delete the filler: the disk has room again (the fault is over)."""
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()
        self.window.end()


def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


@contextlib.contextmanager
def full_disk(path: Path, size_kb: int = 1024, *, inodes: int | None = None) -> Iterator[FullDisk]:
    """Mount a small tmpfs at `path` and fill it: the next write there fails with ENOSPC.

    Needs root (mount). Anything already in `path` is hidden meanwhile (create the
    directory, or mount before the service writes). `inodes` also caps the files that
    can be created. On exit the tmpfs is unmounted even if the test failed; a file
    still open there (the service writing a recording) makes a plain umount fail, so
    it is then detached lazily (umount -l) and freed when the last file is closed."""
    if os.geteuid() != 0:
        raise PermissionError("full_disk() mounts a tmpfs: it needs root")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k,mode=0777" + (f",nr_inodes={inodes}" if inodes else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    disk: FullDisk | None = None
    try:
        disk = FullDisk(path, _fill(path / ".filler"), Window("disk full"))
        yield disk
    finally:
        proc = subprocess.run(["umount", str(path)], capture_output=True, check=False)
        if proc.returncode != 0 and _mounted(path):
            subprocess.run(["umount", "-l", str(path)], check=True)
        if disk is not None and disk.window.ended_at is None:
            disk.window.end()


def _fill(filler: Path) -> Path:
    """Write until ENOSPC, in smaller and smaller pieces, so not one byte is left."""
    with open(filler, "wb", buffering=0) as out:
        for size in (65536, 4096, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler
