"""Unattended work: the job registry, its runner and APScheduler wiring, alerting, retention."""
