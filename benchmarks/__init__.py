"""Benchmarks: scripts that print figures and write them to build/benchmarks/*.json."""
