"""Wiring: settings, the bot and its runtime, health, metrics, logging, clock, scheduler, command tree."""
