"""Synthetic daily runs with per-event ground truth (``simulator.simulate_run``), for tests and benchmarks."""
