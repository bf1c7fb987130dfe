"""sd_notify over a real unix datagram socket standing in for systemd (tests/rig/systemd.py)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from astreinte_ari.adapters.systemd import SystemdNotifier, keep_watchdog
from tests.rig.systemd import FakeSystemd


@pytest.fixture
def abstract_systemd() -> Iterator[tuple[FakeSystemd, str]]:
    with FakeSystemd() as fake:
        yield fake, fake.env_value


def test_messages_reach_a_socket_in_the_abstract_namespace(
    abstract_systemd: tuple[FakeSystemd, str],
) -> None:
    fake, env_value = abstract_systemd
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": env_value})
    assert notifier.enabled
    assert notifier.status("waiting for ARI at http://127.0.0.1:8088")
    assert notifier.ready("ready: app 'astreinte'\nsecond line")
    assert notifier.stopping("draining: 2 call(s) in progress")
    fake.wait_for("STOPPING=1")
    notifier.close()
    assert fake.messages() == [
        "STATUS=waiting for ARI at http://127.0.0.1:8088",
        "READY=1\nSTATUS=ready: app 'astreinte' second line",  # one line per assignment
        "STOPPING=1\nSTATUS=draining: 2 call(s) in progress",
    ]


def test_messages_reach_a_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    fake = FakeSystemd(str(path))
    try:
        notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": str(path)})
        assert notifier.watchdog()
        fake.wait_for("WATCHDOG=1")
    finally:
        fake.close()


def test_outside_systemd_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    assert not SystemdNotifier.from_env({}).ready("ready")
    assert SystemdNotifier.from_env({}).watchdog_interval_s is None
    # systemd gone (socket path without a listener): a warning, never an exception
    gone = SystemdNotifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert not gone.ready("ready") and not gone.watchdog()


def test_watchdog_interval_is_half_the_timeout_and_only_for_our_pid() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"}
    assert SystemdNotifier.from_env(env).watchdog_interval_s == 15.0
    mine = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier.from_env(mine).watchdog_interval_s == 15.0
    other = {**env, "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SystemdNotifier.from_env(other).watchdog_interval_s is None
    assert SystemdNotifier.from_env({"WATCHDOG_USEC": "30000000"}).watchdog_interval_s is None


async def test_watchdog_pings_stop_while_the_event_loop_is_blocked(
    abstract_systemd: tuple[FakeSystemd, str],
) -> None:
    fake, env_value = abstract_systemd
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "100000"})
    assert notifier.watchdog_interval_s == 0.05
    task = asyncio.create_task(keep_watchdog(notifier))
    await asyncio.sleep(0.3)
    blocked_from = time.monotonic()
    time.sleep(0.6)  # a frozen loop: a blocking call in a coroutine
    blocked_to = time.monotonic()
    await asyncio.sleep(0.3)
    task.cancel()
    stamps = [at for at, m in fake.received if m == "WATCHDOG=1"]
    before = [t for t in stamps if t < blocked_from]
    during = [t for t in stamps if blocked_from + 0.03 < t < blocked_to]
    after = [t for t in stamps if t >= blocked_to]
    assert len(before) >= 3 and len(after) >= 3, stamps
    assert during == [], "a ping was sent while the loop was blocked"
