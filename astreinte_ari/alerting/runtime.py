"""The running alert feature: the engine, its wake-ups, shift planning, live edits.

It is given its edges as ports (ports.py); the composition root
(app/alerting_edges.py) builds them, and the HTTP link endpoint, which it hands
over to be closed with the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from astreinte_ari.alerting.engine import AlertEngine
from astreinte_ari.alerting.links import LinkIssuer
from astreinte_ari.alerting.ports import (
    AlertRepository,
    Closable,
    EventSink,
    Notifier,
    Scheduler,
)
from astreinte_ari.alerting.shifts import plan_shift_alerts
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

PLAN_EVERY = timedelta(hours=1)
OVERRIDES_EVERY = timedelta(seconds=30)


class Alerting:
    """The running alert feature: engine, scheduler, and the edges it closes."""

    def __init__(self, engine: AlertEngine, scheduler: Scheduler, config: AppConfig) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self.config = config
        self._edges: list[Closable] = []

    @classmethod
    async def start(
        cls,
        *,
        config: AppConfig,
        store: AlertRepository,
        notifiers: Mapping[str, Notifier],
        links: LinkIssuer | None,
        scheduler: Scheduler,
        clock: Callable[[], datetime],
        events: EventSink | None = None,
    ) -> Alerting:
        """Wake-ups run from here on; shift starts within the horizon are planned."""
        engine = AlertEngine(
            config=config,
            store=store,
            notifiers=dict(notifiers),
            links=links,
            clock=clock,
            schedule=scheduler.wake_at,
            unschedule=scheduler.cancel,
            events=events,
        )
        scheduler.start(engine.run_due)
        alerting = cls(engine, scheduler, config)
        await engine.refresh_overrides()
        scheduler.every("shift-planner", PLAN_EVERY, alerting.plan_shifts)
        # Every node routes calls: each keeps its own copy of the overrides current.
        scheduler.every("overrides", OVERRIDES_EVERY, engine.refresh_overrides, every_node=True)
        if scheduler.leads():  # a follower's shifts are planned by the leader
            await alerting.plan_shifts()
        return alerting

    def hold(self, edge: Closable) -> None:
        """Close `edge` with alerting, once in-flight notifications are done."""
        self._edges.append(edge)

    # router hook (routing.router.OnCallOverride)
    def on_call_override(self, team: str, rota: str, at: datetime) -> str | None:
        return self.engine.on_call_override(team, rota, at)

    async def plan_shifts(self) -> int:
        return await plan_shift_alerts(self.config, self.engine, self.engine.clock())

    async def use_config(self, config: AppConfig) -> None:
        """Follow a live configuration edit (the service's watcher calls this).

        Rotas, people, policies, per-person channels and shift-start rules apply
        at once (shift starts are re-planned); the notifiers, the link endpoint
        and the webhooks were built at start: a change there is logged and needs a restart."""
        old = self.config.alerting
        if config.alerting is None or old is None:
            log.warning("alerting: added or removed in the configuration: restart to apply")
            return
        for part in ("smtp", "sms", "voice", "links", "webhooks"):
            if getattr(config.alerting, part) != getattr(old, part):
                log.warning("alerting.%s changed: restart the service to apply it", part)
        self.config = config
        self.engine.use_config(config)
        if not self.scheduler.leads():
            return  # the leader re-plans when its own watcher sees the edit
        created = await self.plan_shifts()
        if created:
            log.info("alerting: %d shift start(s) planned after the configuration change", created)

    async def fire_due(self) -> int:
        """Run the wake-ups due by the engine's clock (tests drive time this way)."""
        return await self.scheduler.fire_due(self.engine.clock())

    async def close(self) -> None:
        await self.engine.drain(timeout=5)
        self.scheduler.stop()
        for edge in reversed(self._edges):
            await edge.close()
