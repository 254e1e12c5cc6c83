"""Scenario runner: drive the real bot process against the Discord emulator from a JSON timeline,
then compare what MongoDB holds with the ground truth. See docs/scenarios.md."""
