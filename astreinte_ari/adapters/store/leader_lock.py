"""The leader's PostgreSQL advisory lock, on a connection of its own (not the pool's).

A session-level advisory lock lives as long as the session that took it: the
leader keeps one dedicated connection open for it, and the lock is gone the
moment that session ends (process killed, connection cut, pg_terminate_backend).
Every method is blocking; app/cluster.py runs them on one thread of their own
with a timeout (a hung network must not hang the event loop).
"""

from __future__ import annotations

import logging

from sqlalchemy import URL, Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from astreinte_ari.adapters.store.migrate import normalize_url

log = logging.getLogger(__name__)

# pg_locks shows a bigint key as classid (high 32 bits) and objid (low 32 bits).
LEADER_LOCK_KEY = 0x61_73_74_72  # "astr": one key for the whole database
_HOLDERS = text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND classid = 0 AND objid = :key AND objsubid = 1"
)


class AdvisoryLeaderLock:
    """pg_try_advisory_lock / its holder / pg_terminate_backend, for one node."""

    def __init__(self, url: str | URL, node: str) -> None:
        self._engine: Engine = create_engine(
            normalize_url(url),
            poolclass=NullPool,  # the lock's session is ours alone, never pooled
            connect_args={
                "application_name": f"astreinte-leader {node}"[:63],
                "connect_timeout": 3,
                # A dead peer is noticed within seconds, not after TCP's hours.
                "keepalives": 1,
                "keepalives_idle": 2,
                "keepalives_interval": 1,
                "keepalives_count": 3,
            },
        )
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SET statement_timeout = 3000"))
            self._conn = conn
        return self._conn

    def try_acquire(self) -> bool:
        """Take the lock if free (never waits)."""
        try:
            conn = self._connection()
            got = conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY})
        except Exception as exc:
            self._drop(f"could not try the leader lock: {exc}")
            return False
        return bool(got)

    def still_held(self) -> bool:
        """True if the lock's session answers and still holds the lock; else the
        connection is dropped (its lock, if any, goes with it)."""
        if self._conn is None:
            return False
        try:
            mine = self._conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = 0 AND objid = :key AND objsubid = 1 "
                    "AND pid = pg_backend_pid()"
                ),
                {"key": LEADER_LOCK_KEY},
            )
        except Exception as exc:
            self._drop(f"leader lock connection lost: {exc}")
            return False
        if not mine:
            self._drop("leader lock no longer held by this session")
        return bool(mine)

    def holder_pids(self) -> list[int]:
        """Backend pids holding the lock (another node's, a frozen leader's)."""
        conn = self._connection()
        return [int(pid) for pid in conn.scalars(_HOLDERS, {"key": LEADER_LOCK_KEY})]

    def terminate_holder(self) -> list[int]:
        """End the session(s) holding the lock: its leader is frozen. Returns the pids."""
        conn = self._connection()
        pids = [p for p in self.holder_pids() if p != conn.scalar(text("SELECT pg_backend_pid()"))]
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return pids

    def _drop(self, why: str) -> None:
        log.debug("%s", str(why).splitlines()[0][:300])
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # never returned anywhere: the session is gone
                conn.close()
            except Exception:  # already dead: nothing to release
                log.debug("closing the dead leader lock connection failed", exc_info=True)

    def close(self) -> None:
        """Release the lock by ending its session."""
        self._drop("closing")
        self._engine.dispose()
