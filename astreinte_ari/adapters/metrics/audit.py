"""Every audit event of the call flow also feeds the metrics (hop outcomes, time to
answer): one sink in front of the trail, built by the composition root."""

from __future__ import annotations

import logging

from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.callflow.audit_events import AuditEvent
from astreinte_ari.callflow.runtime import AuditSink

log = logging.getLogger(__name__)


class MeteredAudit:
    """Audit sink that also feeds the metrics (hop outcomes, time to answer)."""

    def __init__(self, sink: AuditSink, metrics: ServiceMetrics) -> None:
        self._sink = sink
        self._metrics = metrics

    def emit(self, event: AuditEvent) -> None:
        self._sink.emit(event)  # the trail first: metrics must never cost an audit record
        try:
            self._metrics.on_audit_event(event)
        except Exception:
            log.exception("metrics update failed for %s", type(event).__name__)
