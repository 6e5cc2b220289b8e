"""Hostile inputs: cases by class, run by ``benchmarks/hostile.py``; see docs/reliability.md."""
