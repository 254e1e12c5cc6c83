"""Benchmarks of the bot's hot paths against the raw driver, side by side in one run.

`python -m scripts.bench` (or `--quick`): see docs/benchmarks.md. One module per case; `run.py`
runs them all on one database and collects rows (measurements) and checks (exactness).
"""
