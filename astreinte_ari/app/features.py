"""What the service starts once its database answers, and the configuration in force.

Alerting keeps its jobs in the database, and every accepted configuration
version is recorded there: both wait for it (calls are taken meanwhile, the
journal carries their trail). Part of the composition root: edges are built here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from astreinte_ari.adapters.fallback.plancache import refresh_plan_cache
from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.adapters.store.alerts import AlertStore
from astreinte_ari.adapters.store.config_versions import record_config_version
from astreinte_ari.alerting.feed import AlertFeed
from astreinte_ari.alerting.runtime import Alerting
from astreinte_ari.app.alerting_edges import start_alerting
from astreinte_ari.app.cluster import ClusterNode
from astreinte_ari.app.rota_changes import ChangeOverlay
from astreinte_ari.app.selftest_edges import alert_listener, schedule_test_calls
from astreinte_ari.app.startup import database_ready
from astreinte_ari.callflow.dispatch import OnCallService
from astreinte_ari.callflow.selftest import LineSelfTester
from astreinte_ari.config.loader import ConfigError
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.watcher import ConfigWatcher
from astreinte_ari.schedule.validate import load_checked_config

log = logging.getLogger("astreinte_ari.app.compose")

DATABASE_RETRY_S = 2.0
OPEN_ALERTS_EVERY_S = 15.0  # the /metrics gauge of open alerts: a database count this often


class LiveConfig(ChangeOverlay):
    """The configuration in force now (`current`): the YAML, swapped whole by the
    watcher, plus the approved rota changes (app/rota_changes.py); never mutated.
    A call in progress keeps the plan it started with."""


class DatabaseFeatures:
    """Alerting and the configuration watcher, started once the database answers."""

    def __init__(
        self,
        *,
        cluster: ClusterNode | None = None,
        config: AppConfig,
        live: LiveConfig,
        engine: Engine,
        metrics: ServiceMetrics,
        service: OnCallService,
        alert_feed: AlertFeed,
        clock: Callable[[], datetime],
        selftest: LineSelfTester | None = None,
    ) -> None:
        self.cluster = cluster
        self.selftest = selftest  # the lines' test calls, scheduled with alerting's jobs
        self.config = config
        self.live = live
        self.engine = engine
        self.metrics = metrics
        self.service = service
        self.alert_feed = alert_feed
        self.clock = clock
        self.alerting: Alerting | None = None
        self.watcher: ConfigWatcher | None = None

    def on_call_override(self, team: str, rota: str, at: datetime) -> str | None:
        """The alerting's runtime replacements (shift starts), once alerting runs."""
        return self.alerting.on_call_override(team, rota, at) if self.alerting else None

    async def start(self) -> None:
        while not await asyncio.to_thread(database_ready, self.engine, self.config, quiet=True):
            await asyncio.sleep(DATABASE_RETRY_S)
        alerting = await start_alerting(
            config=self.config,
            engine=self.engine,
            service=self.service,
            clock=self.clock,
            metrics=self.metrics,
            cluster=self.cluster,
        )
        if alerting is not None:
            self.alerting = alerting
            self.alert_feed.attach(alerting.engine.on_call_closed)
            if self.selftest is not None:
                self.selftest.add_listener(alert_listener(lambda: alerting.engine))
                schedule_test_calls(alerting.scheduler, self.live.current, self.selftest)
        self.watcher = await self._watch_config()

    async def follow_rota_changes(self) -> None:
        """The dialplan fallback's plan cache (bound to the YAML, so not rewritten by
        itself) and the shift-start notices follow the approved rota changes too."""
        config, now = self.live.current, self.clock()
        try:
            await asyncio.to_thread(
                refresh_plan_cache,
                config,
                now,
                force=True,
                on_call_override=self.on_call_override,
            )
            log.info("fallback plan cache rewritten with the approved rota changes")
        except Exception as exc:  # the fallback then reads the YAML alone
            log.warning("fallback plan cache not rewritten after rota changes: %s", exc)
        if self.alerting is None:
            return
        try:
            await self.alerting.use_config(self.live.current)
        except Exception:
            log.exception("alerting could not follow the approved rota changes")

    async def keep_counting_open_alerts(self, every: float = OPEN_ALERTS_EVERY_S) -> None:
        """astreinte_open_alerts (due, not acknowledged; not the shift starts still
        scheduled): counted in the database, as acknowledgements come from any
        process (links, the CLI); never on the event loop."""
        store = AlertStore(self.engine)
        while True:
            if self.alerting is not None:
                try:
                    due = await asyncio.to_thread(store.count_in, ("open",))
                    self.metrics.set_open_alerts(due)
                except Exception as exc:  # the database is away: the gauge keeps its value
                    log.warning("open alerts not counted: %s", exc)
            await asyncio.sleep(every)

    async def close(self) -> None:
        if self.alerting is not None:
            await self.alerting.close()
        if self.watcher is not None:
            await self.watcher.stop()

    async def _watch_config(self) -> ConfigWatcher:
        """Pick up YAML edits within seconds; every accepted version goes to the trail."""
        config, source = self.config, str(self.config.source_path)

        async def record(text: str, previous: str | None) -> None:
            try:
                await asyncio.to_thread(record_config_version, self.engine, text, source, previous)
            except Exception:
                log.exception("could not record the configuration version in the audit trail")

        async def on_change(new_config: AppConfig, version: str) -> None:
            self.live.use_yaml(new_config)  # the approved rota changes stay applied
            new_config = self.live.current
            self.metrics.set_config_version(version, source)
            self.metrics.on_config_reload(applied=True)
            await record(watcher.text, watcher.previous_text)
            if self.alerting is not None:
                try:
                    await self.alerting.use_config(new_config)
                except Exception:  # the calls already follow the new version; alerts keep the old
                    log.exception("alerting could not follow the configuration change")
                if self.selftest is not None:
                    schedule_test_calls(self.alerting.scheduler, new_config, self.selftest)

        def on_error(error: ConfigError) -> None:
            self.metrics.on_config_reload(applied=False)
            for issue in error.issues:
                log.error("configuration refused: %s", issue)

        watcher = ConfigWatcher(
            config.source_path, config, on_change, on_error=on_error, load=load_checked_config
        )
        await record(watcher.text, None)
        self.metrics.set_config_version(watcher.version, source)
        watcher.start()
        return watcher
