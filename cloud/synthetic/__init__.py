"""Synthetic brands, planted incidents and simulators for the demo, the tests and the benchmarks.

Nothing on the production path imports this package."""
