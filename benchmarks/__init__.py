"""Benchmarks at production shape: `python -m benchmarks.run --scale full` (see docs/performance.md)."""
