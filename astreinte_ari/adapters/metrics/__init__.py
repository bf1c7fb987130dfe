"""Prometheus metrics of the service: the registry and what feeds it."""
