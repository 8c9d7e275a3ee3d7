"""Always-on ingest from live cameras (see service.py for how the parts fit)."""
