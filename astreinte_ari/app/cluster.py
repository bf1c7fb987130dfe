"""This node in the cluster: its heartbeat, the leader election, the leader's work.

Every service heartbeats its row of cluster_nodes (with whether its Asterisk is
connected). On PostgreSQL the services elect a leader with an advisory lock
(adapters/store/leader_lock.py, decisions in cluster/election.py); on SQLite the
one service always leads. The leader runs the scheduled work (alert wake-ups,
shift planning, retention, checkpoints: `follow()` and `while_leading()`) and the
node-lost sweep (app/cluster_sweep.py). docs/cluster.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from astreinte_ari.adapters.store.cluster_nodes import (
    Heartbeat,
    claim_leadership,
    read_nodes,
    record_step_down,
    write_heartbeat,
)
from astreinte_ari.cluster.election import LockProbe, Role, decide, leading, lease_s
from astreinte_ari.cluster.node_lost import NodeRow, alive
from astreinte_ari.config.cluster import ClusterConfig

log = logging.getLogger("astreinte_ari.cluster")

TICK_S = 1.0  # followers try the lock this often; the leader confirms it as often
LOCK_CALL_TIMEOUT_S = 5.0
_OUTAGE_WARN_EVERY_S = 60.0
T = TypeVar("T")


def first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0][:200] if lines else type(exc).__name__


class LeaderLock(Protocol):
    """adapters/store/leader_lock.AdvisoryLeaderLock (blocking calls)."""

    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def holder_pids(self) -> list[int]: ...
    def terminate_holder(self) -> list[int]: ...
    def close(self) -> None: ...


class NodeSweep(Protocol):
    async def sweep(self, rows: list[NodeRow]) -> object: ...


class ClusterNode:
    """This service's place in the cluster. `lock` None: the only node (SQLite)."""

    def __init__(
        self,
        *,
        node: str,
        config: ClusterConfig,
        engine: Engine,
        lock: LeaderLock | None,
        ari_connected: Callable[[], bool],
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        tick_s: float = TICK_S,
    ) -> None:
        self.node = node
        self.config = config
        self._engine = engine
        self._lock = lock
        self._ari_connected = ari_connected
        self._clock = clock
        self._monotonic = monotonic
        self.tick_s = tick_s
        self._lease = lease_s(tick_s, config.node_lost_after_seconds)
        self.started_at = clock()
        self.role = Role.FOLLOWER if lock is not None else Role.LEADER
        self._confirmed_at: float | None = None if lock is not None else monotonic()
        self._acquired_at: float | None = None  # the lock taken: see election.leading
        self._ari_up: bool | None = None
        self._ari_since: datetime | None = None
        self._ari_lost_at: datetime | None = None
        self._unclaimed_since: float | None = None
        self._followers: list[Callable[[bool], None]] = []
        self._leading_changed = asyncio.Event()
        self._beat_now = asyncio.Event()
        self.sweeper: NodeSweep | None = None
        self.on_view: Callable[[list[NodeRow]], None] | None = None
        self.rows: list[NodeRow] = []
        self.changes = 0  # leadership changes seen by this process (tests, logs)
        # Since when this node's heartbeats have been reaching the database (monotonic;
        # None while they fail). After an outage every node's row is stale at once:
        # nobody is judged lost or frozen until the others have had time to beat again.
        self._db_ok_since: float | None = None
        self._db_failing_since: float | None = None
        self._db_warned_at = 0.0
        # One thread for the lock's connection: its calls never run concurrently.
        self._lock_thread = ThreadPoolExecutor(1, thread_name_prefix="leader-lock")

    # -- what the rest of the service asks -------------------------------------------

    def leading(self) -> bool:
        """May this process run scheduled work now? (lease-checked, see election.py)"""
        if self._lock is None:
            return True
        now = self._monotonic()
        return leading(self.role, self._confirmed_at, now, self._lease, self._acquired_at)

    def follow(self, callback: Callable[[bool], None]) -> None:
        """`callback(leading)` at every tick (the scheduler looks at its store)."""
        self._followers.append(callback)
        callback(self.leading())

    async def while_leading(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `loop` while this node leads: started on acquisition, cancelled on loss."""
        while True:
            while not self.leading():
                self._leading_changed.clear()
                await self._leading_changed.wait()
            task = asyncio.create_task(loop())
            while self.leading() and not task.done():
                self._leading_changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.tick_s):  # not wait_for: see _on_lock_thread
                        await self._leading_changed.wait()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def view(self) -> dict[str, object]:
        """The `cluster` part of /readyz: this node, its role, every node's row."""
        now = self._clock()
        return {
            "node": self.node,
            "role": (Role.LEADER if self.leading() else Role.FOLLOWER).value,
            "nodes": [
                {
                    "node": r.node,
                    "last_seen_age_s": round((now - r.last_seen).total_seconds(), 1),
                    "ari_connected": r.ari_connected,
                    "leader": r.is_leader,
                }
                for r in self.rows
            ],
        }

    def alive_nodes(self) -> int:
        now = self._clock()
        return sum(alive(r, now, self.config.node_lost_after_seconds) for r in self.rows)

    # -- the loops -----------------------------------------------------------------

    async def run(self) -> None:
        """Heartbeat, elect, sweep, until cancelled."""
        beats = asyncio.create_task(self._keep_beating())
        try:
            while True:
                await self.tick()
                await asyncio.sleep(self._next_tick_in())
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats

    async def tick(self) -> None:
        """One election round, then tell the followers where we stand."""
        if self._lock is None:
            return  # the only node: it always leads, and nobody else adds jobs
        try:
            await self._elect()
        except SQLAlchemyError as exc:  # the database away: as normal as a heartbeat miss
            self._db_failed("leader election", exc)
        except Exception:
            log.exception("leader election round failed on node %s", self.node)
        now_leading = self.leading()
        for callback in self._followers:
            try:
                callback(now_leading)
            except Exception:
                log.exception("leadership follower failed")
        self._leading_changed.set()

    def _next_tick_in(self) -> float:
        """A tick's interval, or less: the first tick after a newly taken lock's wait
        (see election.leading) comes as it ends, so the scheduled work resumes then."""
        if self._acquired_at is None or self.role is not Role.LEADER:
            return self.tick_s
        fence_left = self._acquired_at + self._lease - self._monotonic()
        return min(self.tick_s, fence_left + 0.01) if fence_left > 0 else self.tick_s

    async def _elect(self) -> None:
        # Confirmed as of before the lock call: a lease never outlasts the lock by
        # the call's own duration.
        asked_at = self._monotonic()
        if self.role is Role.LEADER:
            held = await self._on_lock_thread(self._locked().still_held, default=False)
            probe = LockProbe(held=held)
        else:
            acquired = await self._on_lock_thread(self._locked().try_acquire, default=False)
            probe = LockProbe(acquired=acquired)
            if not acquired:
                probe = await self._holder_probe()
        decision = decide(self.role, probe, self.config.node_lost_after_seconds)
        if decision.terminate_holder:
            pids = await self._on_lock_thread(self._locked().terminate_holder, default=[])
            log.warning(
                "node %s: the leader's heartbeat is older than %g s (frozen?): ended its "
                "lock session(s) %s to take over",
                self.node,
                self.config.node_lost_after_seconds,
                pids,
            )
            decision = decide(self.role, await self._acquire_after_terminate(), 0)
        if decision.role is Role.LEADER:
            self._confirmed_at = asked_at
            if decision.changed:
                self._acquired_at = self._monotonic()
        if decision.changed:
            await self._change(decision.role)

    async def _acquire_after_terminate(self) -> LockProbe:
        """The ended session releases the lock within moments: take it now rather
        than at the next tick."""
        for _ in range(10):
            await asyncio.sleep(0.05)
            if await self._on_lock_thread(self._locked().try_acquire, default=False):
                return LockProbe(acquired=True)
        return LockProbe()

    async def _holder_probe(self) -> LockProbe:
        rows = await asyncio.to_thread(read_nodes, self._engine)
        self.rows = rows
        claimed = [r for r in rows if r.is_leader]
        now = self._clock()
        if claimed:
            self._unclaimed_since = None
            freshest = max(claimed, key=lambda r: r.last_seen)
            # Right after a database outage the leader's row is as stale as ours.
            age = (now - freshest.last_seen).total_seconds() if self.db_steady() else 0.0
            return LockProbe(holder_age_s=age, holder_is_me=freshest.node == self.node)
        # The lock is held (we did not get it) but no node says it leads: a session
        # left behind. It counts as frozen from the moment we first saw it so.
        holders = await self._on_lock_thread(self._locked().holder_pids, default=[])
        if not holders:
            self._unclaimed_since = None
            return LockProbe()
        mono = self._monotonic()
        self._unclaimed_since = self._unclaimed_since or mono
        return LockProbe(holder_age_s=mono - self._unclaimed_since)

    async def _change(self, role: Role) -> None:
        self.role = role
        self.changes += 1
        at = self._clock()
        if role is Role.LEADER:
            log.warning("leadership acquired on node %s", self.node)
            self._unclaimed_since = None
            await self._write(claim_leadership, self._engine, self.node, at)
        else:
            self._confirmed_at = None
            log.warning("leadership lost on node %s", self.node)
            await self._write(record_step_down, self._engine, self.node, at, "lock lost")

    async def _write(self, fn: Callable[..., object], *args: object) -> None:
        try:
            await asyncio.to_thread(fn, *args)
        except Exception as exc:  # the database away: the next heartbeat says it again
            log.warning("cluster_nodes not updated: %s", first_line(exc))

    def nudge(self) -> None:
        """Heartbeat now (ARI connected or lost: the cluster sees it at once)."""
        self._beat_now.set()

    async def _keep_beating(self) -> None:
        while True:
            self._beat_now.clear()
            await self.beat()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.heartbeat_seconds):
                    await self._beat_now.wait()

    async def beat(self) -> None:
        """Write this node's row; the leader then sweeps for lost nodes."""
        now = self._clock()
        up = self._ari_connected()
        if up != self._ari_up:
            if up:
                self._ari_since = now
            elif self._ari_up is not None or self._ari_lost_at is None:
                self._ari_lost_at = now
            self._ari_up = up
        leader = self.role is Role.LEADER
        beat = Heartbeat(
            self.node, self.started_at, now, up, self._ari_since, self._ari_lost_at, leader
        )
        try:
            await asyncio.to_thread(write_heartbeat, self._engine, beat)
            self.rows = await asyncio.to_thread(read_nodes, self._engine)
        except Exception as exc:
            self._db_failed("cluster heartbeat", exc)
            return
        self._db_back()
        if self.on_view is not None:
            try:
                self.on_view(self.rows)
            except Exception:
                log.exception("cluster view listener failed")
        if self.sweeper is not None and self.leading() and self.db_steady():
            try:
                await self.sweeper.sweep(self.rows)
            except Exception:
                log.exception("node-lost sweep failed")

    async def close(self) -> None:
        """Step down (another node takes over at its next tick) and release the lock."""
        if self._lock is not None:
            if self.role is Role.LEADER:
                self.role = Role.FOLLOWER
                self._confirmed_at = None
                log.warning("leadership lost on node %s (stopping)", self.node)
                await self._write(record_step_down, self._engine, self.node, self._clock(), "stop")
            await self._on_lock_thread(self._lock.close, default=None)
        self._lock_thread.shutdown(wait=False)

    # -- helpers -------------------------------------------------------------------

    def db_steady(self) -> bool:
        """Have heartbeats reached the database for node_lost_after_seconds? Until then
        another node's stale row may be the outage's doing, not the node's."""
        since = self._db_ok_since
        return since is not None and (
            self._monotonic() - since >= self.config.node_lost_after_seconds
        )

    def _db_failed(self, what: str, exc: BaseException) -> None:
        """One warning when the database goes away, then one a minute (not one a tick)."""
        now = self._monotonic()
        self._db_ok_since = None
        if self._db_failing_since is None:
            self._db_failing_since = self._db_warned_at = now
            log.warning("%s failed: %s", what, first_line(exc))
        elif now - self._db_warned_at >= _OUTAGE_WARN_EVERY_S:
            self._db_warned_at = now
            log.warning(
                "%s still failing after %.0f s: %s", what, now - self._db_failing_since,
                first_line(exc),
            )  # fmt: skip

    def _db_back(self) -> None:
        now = self._monotonic()
        if self._db_failing_since is not None:
            log.warning(
                "cluster: database reachable again after %.0f s; node-lost checks resume in "
                "%g s", now - self._db_failing_since, self.config.node_lost_after_seconds,
            )  # fmt: skip
            self._db_failing_since = None
        if self._db_ok_since is None:
            self._db_ok_since = now

    def _locked(self) -> LeaderLock:
        assert self._lock is not None
        return self._lock

    async def _on_lock_thread(self, fn: Callable[[], T], *, default: T) -> T:
        loop = asyncio.get_running_loop()
        future: Awaitable[T] = loop.run_in_executor(self._lock_thread, fn)
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that comes
            # as the call completes, and a stopping node's loop then ran on forever.
            async with asyncio.timeout(LOCK_CALL_TIMEOUT_S):
                return await future
        except Exception as exc:  # a hung network counts as a lost lock
            log.warning("leader lock call failed: %s", first_line(exc))
            return default
