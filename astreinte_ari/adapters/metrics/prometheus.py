"""Prometheus metrics of the service, on its own CollectorRegistry.

Wiring (done by the composition root): call `metrics.on_audit_event(event)` for
every audit event the call flow emits (hop outcomes by line and cause, time to
answer by line), and `metrics.on_call_closed(closed)` when a call ends (call
outcome); set `set_open_alerts(n)`, `set_ari_connected(bool)`,
`set_config_version(...)` and `on_config_reload(applied)` from their owners;
`sample(...)` names the readings taken at scrape time (journal backlog, fallback
imports); serve `metrics_handler` on GET /metrics.

Labels stay bounded: line names come from the configuration (at most MAX_LINES,
then "(other)"), causes are Q.850 codes (0-127); never caller numbers or call ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopStarted,
)
from astreinte_ari.callflow.identity import TEST_LEG
from astreinte_ari.callflow.outcomes import TEST_OUTCOMES as _TEST_OUTCOMES

# Seconds a caller waits for a person: announcement + one or more ring cycles.
TIME_TO_ANSWER_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
log = logging.getLogger(__name__)
METRICS_KEY: web.AppKey[ServiceMetrics] = web.AppKey("astreinte_metrics")
_MAX_OPEN_CALLS = 10_000  # bound on calls and hops tracked for their line (leak guard)
MAX_LINES = 200  # distinct line labels; more would mean a label fed by something else
OTHER_LINE = "(other)"
NO_CAUSE = "none"


def cause_label(code: int | None) -> str:
    """A Q.850 cause as a label: its code, "none" when Asterisk gave none."""
    if code is None:
        return NO_CAUSE
    return str(code) if 0 <= code <= 127 else "invalid"


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.calls = Counter(
            "astreinte_calls", "Calls ended, by outcome", ["outcome"], registry=self.registry
        )
        self.hops = Counter(
            "astreinte_hops",
            "Agent legs ended, by line, outcome and Q.850 cause (none: no cause given)",
            ["line", "outcome", "cause"],
            registry=self.registry,
        )
        self.time_to_answer = Histogram(
            "astreinte_time_to_answer_seconds",
            "From the call's arrival to a person accepting it, by line",
            ["line"],
            buckets=TIME_TO_ANSWER_BUCKETS,
            registry=self.registry,
        )
        self.open_alerts = Gauge(
            "astreinte_open_alerts",
            "Alerts due and not yet acknowledged (counted every 15 s)",
            registry=self.registry,
        )
        self.ari_connected = Gauge(
            "astreinte_ari_connected", "1 when the ARI websocket is up", registry=self.registry
        )
        self.config_info = Info(
            "astreinte_config", "Configuration version in use", registry=self.registry
        )
        # Per line: bounded by the configuration's lines (never caller numbers or ids).
        self.line_calls = Counter(
            "astreinte_line_calls",
            "Calls ended, by line and outcome",
            ["line", "outcome"],
            registry=self.registry,
        )
        self.ari_reconnects = Counter(
            "astreinte_ari_reconnects",
            "ARI websocket connections after the first (each follows an outage)",
            registry=self.registry,
        )
        self.alert_deliveries = Counter(
            "astreinte_alert_deliveries",
            "Alert notifications, by channel (email, sms, voice) and result (sent, failed)",
            ["channel", "result"],
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "astreinte_config_reloads",
            "Configuration edits picked up while running, by result (applied, refused)",
            ["result"],
            registry=self.registry,
        )
        self.config_last_reload_ok = Gauge(
            "astreinte_config_last_reload_ok",
            "0 when the newest configuration edit was refused (the previous one stays in use)",
            registry=self.registry,
        )
        self.config_last_reload_ok.set(1)
        # The lines' scheduled test calls (callflow/selftest.py): never in the call counts.
        self.test_call_last_result = Gauge(
            "astreinte_test_call_last_result",
            "1 when the line's last test call was bridged with the test endpoint, 0 when it failed",
            ["line"],
            registry=self.registry,
        )
        self.test_calls = Counter(
            "astreinte_test_calls",
            "Test calls run, by line and result (passed, failed)",
            ["line", "result"],
            registry=self.registry,
        )
        self.test_call_last_success = Gauge(
            "astreinte_test_call_last_success_timestamp_seconds",
            "When the line's last passed test call ended (Unix time)",
            ["line"],
            registry=self.registry,
        )
        self._test_calls: set[str] = set()  # call ids of test calls, until they end
        self._test_hops: set[str] = set()
        self._samples = _Samples()
        self.registry.register(self._samples)
        # One series per process: the node label is this node's own name.
        self.cluster_leader = Gauge(
            "astreinte_cluster_leader",
            "1 while this node leads the cluster (runs the scheduled work)",
            ["node"],
            registry=self.registry,
        )
        self.cluster_nodes_alive = Gauge(
            "astreinte_cluster_nodes_alive",
            "Nodes whose heartbeat is recent (cluster_nodes), this one included",
            registry=self.registry,
        )
        if registry is None:
            # A registry of our own drops prometheus_client's defaults: process_*
            # (RSS, CPU, open fds), python_gc_* and python_info are added back.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self._ever_connected = False
        self._connected = False
        self._started: dict[str, datetime] = {}  # call id -> arrival, until answered
        self._call_line: dict[str, str] = {}  # call id -> line, until the call ends
        self._hop_line: dict[str, str] = {}  # hop id -> line, until the hop ends
        self._lines: set[str] = set()

    def line_label(self, line: str) -> str:
        """The line's name, or "(other)" past MAX_LINES distinct names."""
        if line in self._lines:
            return line
        if len(self._lines) >= MAX_LINES:
            return OTHER_LINE
        self._lines.add(line)
        return line

    def on_audit_event(self, event: AuditEvent) -> None:
        if self._is_test(event):
            return
        match event:
            case CallStarted():
                if len(self._call_line) < _MAX_OPEN_CALLS:
                    self._started[event.call_id] = event.at
                    self._call_line[event.call_id] = self.line_label(event.line_name)
            case HopStarted():
                line = self._call_line.get(event.call_id)
                if line is not None and len(self._hop_line) < _MAX_OPEN_CALLS:
                    self._hop_line[event.hop_id] = line
            case CallAnswered():
                start = self._started.pop(event.call_id, None)
                if start is not None:
                    seconds = max(0.0, (event.at - start).total_seconds())
                    line = self._call_line.get(event.call_id, OTHER_LINE)
                    self.time_to_answer.labels(line=line).observe(seconds)
            case HopEnded():
                self.hops.labels(
                    line=self._hop_line.pop(event.hop_id, OTHER_LINE),
                    outcome=str(event.outcome),
                    cause=cause_label(event.cause_code),
                ).inc()
            case CallEnded():
                self._started.pop(event.call_id, None)
                self._call_line.pop(event.call_id, None)
            case _:
                pass

    def _is_test(self, event: AuditEvent) -> bool:
        """A test call's events feed none of the call metrics (only the test's own)."""
        match event:
            case CallStarted() if event.channel_id.startswith(TEST_LEG):
                if len(self._test_calls) < _MAX_OPEN_CALLS:
                    self._test_calls.add(event.call_id)
                return True
            case HopStarted() if event.call_id in self._test_calls:
                self._test_hops.add(event.hop_id)
                return True
            case HopEnded() if event.hop_id in self._test_hops:
                self._test_hops.discard(event.hop_id)
                return True
            case CallAnswered() if event.call_id in self._test_calls:
                return True
            case CallEnded() if event.call_id in self._test_calls:
                self._test_calls.discard(event.call_id)
                return True
        return False

    def on_test_call(self, line: str, passed: bool, at: datetime) -> None:
        """A test call's result (callflow/selftest.py)."""
        label = self.line_label(line)
        self.test_calls.labels(line=label, result="passed" if passed else "failed").inc()
        self.test_call_last_result.labels(line=label).set(1 if passed else 0)
        if passed:
            self.test_call_last_success.labels(line=label).set(at.timestamp())

    def on_call_closed(self, closed: Any) -> None:
        """closed: astreinte_ari.callflow.call.CallClosed."""
        if str(closed.outcome) in _TEST_OUTCOMES:  # counted by on_test_call, never as a call
            return
        self.calls.labels(outcome=str(closed.outcome)).inc()
        line = self.line_label(closed.plan.line_name)
        self.line_calls.labels(line=line, outcome=str(closed.outcome)).inc()
        self._started.pop(closed.call_id, None)
        self._call_line.pop(closed.call_id, None)

    def sample(
        self,
        *,
        journal_events: Callable[[], int] | None = None,
        journal_bytes: Callable[[], int] | None = None,
        fallback_imported: Callable[[], int] | None = None,
    ) -> None:
        """Readings taken at each scrape from their owners (no copy kept in sync)."""
        self._samples.journal_events = journal_events or self._samples.journal_events
        self._samples.journal_bytes = journal_bytes or self._samples.journal_bytes
        self._samples.fallback_imported = fallback_imported or self._samples.fallback_imported

    def on_config_reload(self, applied: bool) -> None:
        self.config_reloads.labels(result="applied" if applied else "refused").inc()
        self.config_last_reload_ok.set(1 if applied else 0)

    def set_open_alerts(self, count: int) -> None:
        self.open_alerts.set(count)

    def set_cluster(self, node: str, leader: bool, alive: int) -> None:
        self.cluster_leader.labels(node=node).set(1 if leader else 0)
        self.cluster_nodes_alive.set(alive)

    def set_ari_connected(self, connected: bool) -> None:
        if connected and self._ever_connected and not self._connected:
            self.ari_reconnects.inc()
        self._ever_connected = self._ever_connected or connected
        self._connected = connected
        self.ari_connected.set(1 if connected else 0)

    def on_alert_delivery(self, channel: str, sent: bool) -> None:
        self.alert_deliveries.labels(channel=channel, result="sent" if sent else "failed").inc()

    def set_config_version(self, version: str, source: str = "") -> None:
        self.config_info.info({"version": version, "source": source})

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Samples(Collector):
    """Backlog and import figures read from their owners when Prometheus scrapes."""

    def __init__(self) -> None:
        self.journal_events: Callable[[], int] = lambda: 0
        self.journal_bytes: Callable[[], int] = lambda: 0
        self.fallback_imported: Callable[[], int] = lambda: 0

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        # A reading that fails (its owner closing at shutdown) is left out of this
        # scrape rather than failing the whole /metrics page.
        events, size, imported = (
            _read(self.journal_events),
            _read(self.journal_bytes),
            _read(self.fallback_imported),
        )
        if events is not None:
            yield GaugeMetricFamily(
                "astreinte_journal_backlog_events",
                "Audit events accepted but not yet committed to the database",
                value=events,
            )
        if size is not None:
            yield GaugeMetricFamily(
                "astreinte_journal_backlog_bytes",
                "Size of the write-ahead audit journal (events kept while the database lags)",
                value=size,
            )
        if imported is not None:
            yield CounterMetricFamily(
                "astreinte_fallback_calls_imported",
                "Calls handled by the dialplan fallback and imported into the trail",
                value=imported,
            )


def _read(reading: Callable[[], int]) -> int | None:
    try:
        return reading()
    except Exception:
        log.exception("metrics reading failed")
        return None


async def metrics_handler(request: web.Request) -> web.Response:
    """GET /metrics: the registry stored in the app under METRICS_KEY, text format."""
    metrics = request.app[METRICS_KEY]
    response = web.Response(body=metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
