"""Dialplan fallback: the AGI that rings the on-call mobile while the service is
down, the spool it writes, and the import of that spool into the audit trail."""
