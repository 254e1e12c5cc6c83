"""Wiring of the activity and invite tracker: settings, database, retry, scheduler, bot."""

__version__ = "0.1.0"
