"""Watchlist alert rules: their data, their pure evaluation, and notifiers."""
