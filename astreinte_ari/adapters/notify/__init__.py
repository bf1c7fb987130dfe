"""Notifiers: one adapter per channel behind alerting.ports.Notifier."""
