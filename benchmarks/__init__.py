"""Benchmarks: rollback-bot measured against baselines run side by side (`python -m benchmarks`)."""
