"""Managers' reports and on-call statements (read side of the audit store)."""
