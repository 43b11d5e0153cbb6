"""Railguard benchmarks: each figure beside a baseline measured in the same run, as a ratio.

Run with ``make bench`` (``python -m benchmarks``); see docs/performance.md for the method.
"""
