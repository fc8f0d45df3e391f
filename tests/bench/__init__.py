"""Benchmark helpers: each module exposes ``run() -> list[dict]``."""
