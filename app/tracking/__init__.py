"""Tracking: voice sessions, message counts, invite attribution, day buckets, ranks, charts (no Discord)."""
