"""The randomized fault campaign: seeded scenarios of traffic and faults, run with the real bot
against the emulator, checked against the ground truth (docs/reliability.md)."""
