"""The running service: the composition root, start-up, readiness and doctor."""
