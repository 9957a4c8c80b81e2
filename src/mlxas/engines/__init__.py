"""Engines of the simulation stage behind one interface (:mod:`mlxas.engines.base`)."""

from mlxas.engines.base import (
    EngineError,
    InputError,
    ItemInput,
    ItemResult,
    SignalEngine,
    engine_class,
    engine_names,
    get_engine,
    register,
)

__all__ = [
    "EngineError",
    "InputError",
    "ItemInput",
    "ItemResult",
    "SignalEngine",
    "engine_class",
    "engine_names",
    "get_engine",
    "register",
]
