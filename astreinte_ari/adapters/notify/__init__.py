"""Notifiers: one interface (base.Notifier), one adapter per channel."""
