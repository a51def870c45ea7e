"""Reproducible performance figures for the event log.

Run ``python -m benchmarks`` (or ``make bench``). Every figure comes from
real durable commits to a fresh LMDB data directory on local disk; nothing
is estimated. Each module measures one thing and returns its figures; the
entry point runs them a few rounds and prints the best and the median.
"""
