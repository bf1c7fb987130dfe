"""Prometheus metrics of the service, on its own CollectorRegistry.

Wiring (done by the service): call `metrics.on_audit_event(event)` for every
audit event the call flow emits (hop outcomes, time to answer), and
`metrics.on_call_closed(closed)` when a call ends (call outcome); set
`set_open_alerts(n)`, `set_ari_connected(bool)` and `set_config_version(...)`
from their owners; serve `metrics_handler` on GET /metrics.
"""

from __future__ import annotations

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

from astreinte_ari.callflow.audit_events import AuditEvent, CallAnswered, CallStarted, HopEnded

# Seconds a caller waits for a person: announcement + one or more ring cycles.
TIME_TO_ANSWER_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
METRICS_KEY: web.AppKey[ServiceMetrics] = web.AppKey("astreinte_metrics")
_MAX_OPEN_CALLS = 10_000  # bound on calls tracked for time-to-answer (leak guard)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.calls = Counter(
            "astreinte_calls", "Calls ended, by outcome", ["outcome"], registry=self.registry
        )
        self.hops = Counter(
            "astreinte_hops", "Agent legs ended, by outcome", ["outcome"], registry=self.registry
        )
        self.time_to_answer = Histogram(
            "astreinte_time_to_answer_seconds",
            "From the call's arrival to a person accepting it",
            buckets=TIME_TO_ANSWER_BUCKETS,
            registry=self.registry,
        )
        self.open_alerts = Gauge(
            "astreinte_open_alerts", "Alerts not yet acknowledged", registry=self.registry
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
        self._started: dict[str, datetime] = {}

    def on_audit_event(self, event: AuditEvent) -> None:
        match event:
            case CallStarted():
                if len(self._started) < _MAX_OPEN_CALLS:
                    self._started[event.call_id] = event.at
            case CallAnswered():
                start = self._started.pop(event.call_id, None)
                if start is not None:
                    self.time_to_answer.observe(max(0.0, (event.at - start).total_seconds()))
            case HopEnded():
                self.hops.labels(outcome=str(event.outcome)).inc()
            case _:
                pass

    def on_call_closed(self, closed: Any) -> None:
        """closed: astreinte_ari.callflow.call.CallClosed."""
        self.calls.labels(outcome=str(closed.outcome)).inc()
        self.line_calls.labels(line=closed.plan.line_name, outcome=str(closed.outcome)).inc()
        self._started.pop(closed.call_id, None)

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


async def metrics_handler(request: web.Request) -> web.Response:
    """GET /metrics: the registry stored in the app under METRICS_KEY, text format."""
    metrics = request.app[METRICS_KEY]
    response = web.Response(body=metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
