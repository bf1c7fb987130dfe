"""alerting.ports.Scheduler on APScheduler 3.

Wake-ups are jobs in a SQLAlchemyJobStore in the service's own database (table
apscheduler_jobs, created by APScheduler), so a restart loses no pending
reminder, escalation or shift alert. Periodic chores are in-memory jobs.

APScheduler 3 stores a job's function as an import path, which can only reach
module-level state. So the stored path names `wake_up`, a marker, and every
wake-up read back from the database runs on the handler this scheduler was
started with (the running engine): no global registry of engines.

Several nodes may share the database (docs/cluster.md): every node adds and
cancels wake-ups in the one job store, only the leader runs them. `gate` says
whether this process leads now; closed, the store shows no job due, chores
other than node-local ones are skipped, and a wake-up that slipped through
(leadership lost between its pick-up and its run) is put back for the leader.
The leader calls `follow(True)` every second or so: APScheduler 3 only looks
at the store at the next run time it computed, not at jobs other processes add.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from astreinte_ari.alerting.ports import Wake

log = logging.getLogger(__name__)

Gate = Callable[[], bool]

WAKE_UPS, CHORES = "default", "memory"  # job store aliases ("default": as earlier releases)
WAKE_UP_REF = f"{__name__}:wake_up"
# Where earlier releases pointed their persisted jobs: still pending in databases
# written before this module existed, and run like any other wake-up.
_EARLIER_REFS = frozenset({"astreinte_ari.alerting.runtime:run_alert_job"})


async def wake_up(alert_id: str) -> None:
    """The function the job store names; PersistentScheduler runs its own handler."""
    raise RuntimeError(f"wake-up {alert_id} read by a job store that is not a WakeUpStore")


def job_id(alert_id: str) -> str:
    return f"alert-{alert_id}"


class WakeUpStore(SQLAlchemyJobStore):
    """The persisted wake-ups; each one read back calls this process's handler."""

    def __init__(self, engine: Engine, gate: Gate | None = None) -> None:
        super().__init__(engine=engine)
        self.wake: Wake | None = None
        self.gate = gate

    def _leads(self) -> bool:
        return self.gate is None or self.gate()

    # A follower sees nothing due (and no next run time: it would spin on a past one).
    def get_due_jobs(self, now: datetime) -> list[Job]:
        return super().get_due_jobs(now) if self._leads() else []

    def get_next_run_time(self) -> datetime | None:
        return super().get_next_run_time() if self._leads() else None

    # The one hook APScheduler 3 offers between the stored row and the job it runs
    # (APScheduler 3; setup.cfg pins <4); tests/unit/test_alert_acks.py reads
    # an earlier release's job through it.
    def _reconstitute_job(self, job_state: bytes) -> Job:
        state = pickle.loads(job_state)
        if state.get("func") in _EARLIER_REFS:
            state["func"] = WAKE_UP_REF
        state["jobstore"] = self
        job = Job.__new__(Job)
        job.__setstate__(state)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        if self.wake is not None:
            job.func = self.wake  # only the stored ref must stay importable
        return job


class PersistentScheduler:
    """alerting.ports.Scheduler. `paused`: nothing fires on real time; tests run the
    due wake-ups with `fire_due(now)` on their own clock."""

    def __init__(self, engine: Engine, *, paused: bool = False, gate: Gate | None = None) -> None:
        self._store = WakeUpStore(engine, gate)
        self._gate = gate
        self._paused = paused
        self._was_leading = False
        self._local_chores: set[str] = set()  # chores every node runs (its own state)
        # Public for tests that inspect or move the persisted jobs themselves.
        self.apscheduler = AsyncIOScheduler(
            jobstores={WAKE_UPS: self._store, CHORES: MemoryJobStore()}, timezone=UTC
        )

    def start(self, wake: Wake) -> None:
        self._store.wake = self._guarded(wake) if self._gate is not None else wake
        self.apscheduler.start(paused=self._paused)

    def leads(self) -> bool:
        return self._gate is None or self._gate()

    def _guarded(self, wake: Wake) -> Wake:
        async def run(alert_id: str) -> None:
            if not self.leads():
                # Picked up just before leadership moved: the job is already out of the
                # store. Put it back, due now, for whoever leads.
                log.warning("wake-up of alert %s handed back: no longer the leader", alert_id)
                self.wake_at(alert_id, datetime.now(UTC))
                return
            await wake(alert_id)

        return run

    def follow(self, leading: bool) -> None:
        """The cluster's tick. Leading: look at the store now (jobs other nodes added),
        and at leadership's start run the leader's chores at once."""
        if self._paused or not self.apscheduler.running:
            return
        if leading and not self._was_leading:
            now = datetime.now(UTC)
            for job in self.apscheduler.get_jobs(jobstore=CHORES):
                if job.id not in self._local_chores:
                    job.modify(next_run_time=now)
        self._was_leading = leading
        if leading:
            self.apscheduler.wakeup()

    def wake_at(self, alert_id: str, at: datetime) -> None:
        self.apscheduler.add_job(
            wake_up,
            "date",
            run_date=at,
            args=[alert_id],
            id=job_id(alert_id),
            replace_existing=True,
            misfire_grace_time=None,  # late (after a restart) is better than never
            coalesce=True,
            jobstore=WAKE_UPS,
        )

    def cancel(self, alert_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.apscheduler.remove_job(job_id(alert_id), jobstore=WAKE_UPS)

    def every(
        self,
        name: str,
        interval: timedelta,
        chore: Callable[[], Awaitable[object]],
        *,
        every_node: bool = False,
    ) -> None:
        if every_node:
            self._local_chores.add(name)
        elif self._gate is not None:
            chore = self._leader_only(chore)
        self.apscheduler.add_job(
            chore,
            "interval",
            seconds=interval.total_seconds(),
            id=name,
            jobstore=CHORES,
            replace_existing=True,
        )

    def _leader_only(
        self, chore: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            return await chore() if self.leads() else None

        return run

    def daily(
        self,
        name: str,
        hour: int,
        minute: int,
        timezone: str,
        chore: Callable[[], Awaitable[object]],
    ) -> None:
        """Run `chore` every day at hour:minute local time in `timezone` (not persisted:
        a run missed while stopped is not replayed; a DST gap skips that day's run).
        In a cluster only the leader runs it (a line's test call: once, not per node)."""
        if self._gate is not None:
            chore = self._leader_only(chore)
        self.apscheduler.add_job(
            chore,
            CronTrigger(hour=hour, minute=minute, timezone=timezone),
            id=name,
            jobstore=CHORES,
            replace_existing=True,
            misfire_grace_time=300,  # a busy loop may start it late, not hours late
            coalesce=True,
            max_instances=1,
        )

    def cancel_chores(self, prefix: str) -> None:
        """Remove the periodic chores whose name starts with `prefix`."""
        for job in self.apscheduler.get_jobs(jobstore=CHORES):
            if job.id.startswith(prefix):
                job.remove()

    def pending(self) -> int:
        return len(self.apscheduler.get_jobs(jobstore=WAKE_UPS))

    async def fire_due(self, now: datetime) -> int:
        fired = 0
        for job in self.apscheduler.get_jobs(jobstore=WAKE_UPS):
            if job.next_run_time is not None and job.next_run_time <= now:
                job.remove()
                await job.func(*job.args)
                fired += 1
        return fired

    def stop(self) -> None:
        self.apscheduler.shutdown(wait=False)
