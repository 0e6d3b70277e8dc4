"""Benchmarks of the operator on a real control plane: ``make bench`` (see RESULTS.md)."""
