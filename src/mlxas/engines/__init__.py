"""Engines of the simulation stage behind one interface (:mod:`mlxas.engines.base`)."""

from mlxas.engines.base import (
    Axis,
    EngineError,
    InputError,
    ItemInput,
    ItemResult,
    SignalEngine,
    engine_class,
    engine_from_plan,
    engine_names,
    get_engine,
    register,
)

__all__ = [
    "Axis",
    "EngineError",
    "InputError",
    "ItemInput",
    "ItemResult",
    "SignalEngine",
    "engine_class",
    "engine_from_plan",
    "engine_names",
    "get_engine",
    "register",
]
