"""Typed settings of the simulation stage (the ``simulation`` config section)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SimulationSettings"]


@dataclass(frozen=True)
class SimulationSettings:
    """``engine``: the registered engine that computes every item (its own settings are
    in its config section); ``chunk_size`` items per job, ``threads`` items at a time
    inside one job, ``timeout`` in s per item (wall clock)."""

    engine: str = "feff8l"
    chunk_size: int = 25
    threads: int = 2
    timeout: float = 900.0
