"""Alert deliveries counted by channel and result: a notifier in front of each
notifier, built by the composition root (alerting itself knows no metrics)."""

from __future__ import annotations

from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.alerting.ports import (
    Acknowledge,
    AlertMessage,
    Delivery,
    Notifier,
    Progress,
    Recipient,
)


class MeteredNotifier:
    def __init__(self, notifier: Notifier, metrics: ServiceMetrics) -> None:
        self.channel = notifier.channel
        self._notifier = notifier
        self._metrics = metrics

    async def send(
        self,
        to: Recipient,
        message: AlertMessage,
        acknowledge: Acknowledge | None = None,
        progress: Progress | None = None,
    ) -> Delivery:
        try:
            delivery = await self._notifier.send(to, message, acknowledge, progress)
        except Exception:  # a cancelled send (shutdown) is not a failed delivery
            self._metrics.on_alert_delivery(self.channel, sent=False)
            raise
        self._metrics.on_alert_delivery(self.channel, sent=True)
        return delivery
