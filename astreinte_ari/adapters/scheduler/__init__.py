"""Wake-ups that survive a restart (alerting.ports.Scheduler) on APScheduler."""
