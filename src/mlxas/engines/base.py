"""The simulation stage's one interface: structure (or absorbing site) in, signal out.

Every engine of the workflow's simulation stage -- the FEFF codes, the powder-XRD
simulator, the structure-factor (``reflections``) engine and the learned surrogate -- is a
subclass of :class:`SignalEngine`, registered by name with :func:`register`.  The stage
code around it is shared and engine-blind:

1. ``inputs`` (checkpoint, per source): for every *item* of the source -- an absorbing
   site for site-resolved engines (``unit = "site"``), a whole structure for diffraction
   (``unit = "structure"``) -- :meth:`SignalEngine.input_text` writes the engine's exact
   input (``feff.inp``, or canonical JSON for the Python engines).  Its hash, with the
   engine's version, is the item's ``input_hash``: equal hashes mean equal runs.  Items
   are grouped into chunks of ``chunk_size``.
2. ``simulate`` (per chunk): :meth:`SignalEngine.run` turns one input into an
   :class:`ItemResult` holding named arrays (``k``/``chi`` for EXAFS, ``energy``/``mu``
   for XANES, ``two_theta``/``intensity`` for XRD, ``hkl``/``amplitude``/``phase`` for
   reflections).  The shared runner resumes finished items, runs ``threads`` items at a
   time, and writes one chunk HDF5 file with every array stored ragged.
3. ``gather``: :meth:`SignalEngine.featurize` turns the arrays of many items into the
   fixed-length model inputs of ``dataset.h5``.

Nothing outside an engine's module knows what its input text or its arrays mean.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

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


class EngineError(ValueError):
    """An engine name or engine setting that mlxas cannot use (a config error)."""


class InputError(ValueError):
    """An item for which no valid input can be written; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(detail)


@dataclass(frozen=True)
class ItemInput:
    """One row of a source's input table: what :meth:`SignalEngine.run` receives."""

    item_id: str  #: site id (``<structure id>-<atom index>``) or structure id
    structure_id: str
    chunk: int
    text: str  #: the engine's exact input; its hash is ``input_hash``
    input_hash: str
    reason: str = ""  #: non-empty: refused when the inputs were written, nothing to run
    detail: str = ""


@dataclass
class ItemResult:
    """What one run produced.  Engines never raise for trouble with one item: they
    return ``status="failed"`` with a ``reason`` code (documented per engine)."""

    item_id: str
    status: Literal["ok", "failed"]
    input_hash: str
    engine: str
    engine_version: str
    reason: str = ""
    detail: str = ""
    seconds: float = 0.0
    #: per-item numbers (e.g. FEFF's ``e0`` in eV); NaN where unknown
    scalars: dict[str, float] = field(default_factory=dict)
    #: named 1-D (or [n, m]) arrays; every item of one engine has the same names
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class SignalEngine(ABC):
    """One simulation code.  Subclasses set the class attributes and implement
    :meth:`input_text`, :meth:`run` and :meth:`featurize`.

    An instance is built from the engine's own typed settings (``settings_class``, read
    once from the engine's config section); it holds no other state, so the shared
    runner may call :meth:`run` from several threads.
    """

    #: registry name, the value of the config key that selects the engine
    name: ClassVar[str]
    #: ``site``: one item per absorbing site; ``structure``: one item per structure
    unit: ClassVar[Literal["site", "structure"]]
    #: names of the arrays in every successful :class:`ItemResult`
    arrays: ClassVar[tuple[str, ...]]
    #: names of the scalars in every :class:`ItemResult`
    scalars: ClassVar[tuple[str, ...]] = ()
    #: typed settings (a frozen dataclass) built from the engine's config section
    settings_class: ClassVar[type]

    def __init__(self, settings: Any):
        self.settings = settings

    @property
    @abstractmethod
    def version(self) -> str:
        """Version of the code that computes the signal; part of every input hash."""

    def prepare(self) -> None:  # noqa: B027 (optional hook, empty by default)
        """Imports and look-ups done once per process, before the first run is timed."""

    @abstractmethod
    def input_text(self, atoms: Any, site_index: int | None, item_id: str) -> str:
        """The exact input of one item: ``atoms`` (ASE) with the absorbing atom's index
        (``None`` for ``unit = "structure"``).  Raises :class:`InputError` when no
        valid input can be written (too many atoms, unsupported element, ...)."""

    @abstractmethod
    def run(self, item: ItemInput, rundir: Path, timeout: float) -> ItemResult:
        """Compute one item.  ``rundir`` is the item's own scratch/run directory (engines
        that need no files may ignore it).  Must return within about ``timeout`` s."""

    @abstractmethod
    def featurize(self, results: Sequence[ItemResult], features: Any) -> dict[str, np.ndarray]:
        """Model inputs of successful items: ``{feature name: float32 [n_items, ...]}``,
        each feature of fixed shape.  ``features`` is the typed feature settings."""

    def feature_axes(self, features: Any) -> Mapping[str, tuple[np.ndarray, str]]:
        """Axis values and unit of each 1-D feature (for plots and ``dataset.h5``)."""
        return {}


_REGISTRY: dict[str, type[SignalEngine]] = {}


def register(cls: type[SignalEngine]) -> type[SignalEngine]:
    """Class decorator: make ``cls`` selectable by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise EngineError(f"engine name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def engine_names() -> list[str]:
    """Names of the registered engines, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def engine_class(name: str) -> type[SignalEngine]:
    """The engine class registered as ``name``; :class:`EngineError` names the choices."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EngineError(
            f"unknown engine {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


def get_engine(name: str, settings: Any) -> SignalEngine:
    """An engine instance from its name and typed settings."""
    return engine_class(name)(settings)


#: Modules that register the built-in engines, imported on first look-up so that reading
#: a config does not import every simulation library.
BUILTIN_MODULES: list[str] = []


def _load_builtin() -> None:
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
