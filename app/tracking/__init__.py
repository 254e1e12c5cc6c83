"""Tracking: voice sessions, message counts, invite attribution, day buckets, ranks, cards (no Discord)."""
