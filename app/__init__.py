"""The activity and invite tracker, by concern: wiring, storage, tracking, operations."""

__version__ = "0.1.0"
