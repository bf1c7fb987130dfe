"""Alerts that repeat until acknowledged: missed calls, shift starts (see docs/alerts.md)."""
