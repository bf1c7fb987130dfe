"""What Asterisk itself records about calls, read by the service (CEL)."""
