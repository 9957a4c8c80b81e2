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

Configuration: ``simulation.engine`` names the engine (the one place that selects it);
its settings are the config section named by :attr:`SignalEngine.section` (``feff`` for
the three FEFF codes), read once by :meth:`SignalEngine.settings_from_config` into the
engine's ``settings_class``.  The workflow stores them as JSON (``to_dict``) in the chunk
plan, so every later stage rebuilds the same engine with :func:`engine_from_plan`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

from mlxas.errors import ConfigError

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


class EngineError(ConfigError):
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
    #: hash of the engine's settings that shaped ``text`` (FEFF: merged cards and radius)
    settings_hash: str = ""


class Axis(NamedTuple):
    """One axis of a fixed-length array: grid name in ``dataset.h5``, values and unit."""

    name: str
    values: np.ndarray
    unit: str
    description: str = ""


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
    #: config section holding the settings; empty: the section named like the engine
    section: ClassVar[str] = ""

    def __init__(self, settings: Any):
        self.settings = settings

    @classmethod
    def config_section(cls) -> str:
        """Name of the engine's config section."""
        return cls.section or cls.name

    @classmethod
    def settings_from_config(
        cls, section: Mapping[str, Any] | None, *, absorber: str | None, edge: str | None
    ) -> Any:
        """Typed settings from the engine's config section (defaults filled in by the
        schema).  ``absorber`` and ``edge`` are the experiment's (None where unset).
        Raises :class:`EngineError` (a config error) for settings the engine refuses.
        The default builds ``settings_class`` from the section's keys."""
        from mlxas.settings import from_mapping

        return from_mapping(cls.settings_class, section, cls.config_section())

    def settings_dict(self) -> dict[str, Any]:
        """The settings as plain JSON data; ``settings_class`` rebuilds them."""
        from mlxas.settings import to_dict

        return to_dict(self.settings)

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
        each feature of fixed shape.  ``features`` is the dataset's feature settings
        (the ``features`` config section).  Keys listed by :meth:`signal_names` are the
        items' signals on fixed grids rather than model inputs (see there)."""

    def feature_axes(self, features: Any) -> Mapping[str, tuple[np.ndarray, str] | Sequence[Axis]]:
        """Axes of each key of :meth:`featurize`: ``(values, unit)`` for a 1-D array (the
        grid is named like the key) or one :class:`Axis` per dimension (grids shared by
        several features share a name, e.g. ``k``)."""
        return {}

    def feature_units(self, features: Any) -> Mapping[str, str]:
        """Unit of the values of each key of :meth:`featurize` (empty: no unit)."""
        return {}

    # Optional hooks, with defaults that suit an engine without them.

    def target_names(self, features: Any) -> tuple[str, ...]:
        """Keys of :meth:`featurize` that are model *targets* computed with the signal
        (the ``reflections`` engine: each reflection's phase sign and phase), not model
        inputs.  ``gather`` stores them as labels of the items (units from
        :meth:`feature_units`, grid from :meth:`feature_axes`), beside the label sets'
        columns, and the config check accepts them as model targets.  Empty: every
        target comes from the label sets."""
        return ()

    def item_engines(self) -> tuple[str, ...]:
        """Engine names the items of this engine's chunk files may carry: its own; an
        engine that hands some items to another code (the surrogate: FEFF) names it too,
        so that ``gather`` accepts the mix (every item keeps its own engine and version)."""
        return (self.name,)

    def check_item(self, result: ItemResult, features: Any) -> tuple[str, str] | None:
        """``(reason, detail)`` when a successful run's arrays cannot be featurized (empty,
        not finite, a XANES edge that cannot be normalised); gather lists the item as a
        failure instead of passing it to :meth:`featurize`."""
        return None

    def signal_names(self, features: Any) -> tuple[str, ...]:
        """Keys of :meth:`featurize` that are per-item signals on fixed grids (FEFF:
        ``chi`` on the k grid, ``edge/mu``...).  They are stored per item in
        ``dataset.h5`` and averaged for k-site examples, whose model inputs are then
        computed by :meth:`featurize_signals`.  Empty: the engine does not average."""
        return ()

    def featurize_signals(
        self, signals: Mapping[str, np.ndarray], features: Any
    ) -> dict[str, np.ndarray]:
        """Model inputs from (averaged) signals; needed when :meth:`signal_names` is not
        empty."""
        raise EngineError(f"engine {self.name} cannot compute features of averaged items")


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
    """An engine instance from its name and typed settings (or their plain-data form,
    as :meth:`SignalEngine.settings_dict` writes it)."""
    cls = engine_class(name)
    if isinstance(settings, Mapping):
        from mlxas.settings import from_mapping

        settings = from_mapping(cls.settings_class, settings, cls.config_section())
    return cls(settings)


def engine_from_plan(plan: Mapping[str, Any]) -> SignalEngine:
    """The engine that wrote a chunk plan (``chunks.json``: ``engine``, ``settings``)."""
    return get_engine(plan["engine"], plan["settings"])


#: Modules that register the built-in engines, imported on first look-up so that reading
#: a config does not import every simulation library.
BUILTIN_MODULES: list[str] = [
    "mlxas.engines.feff",
    "mlxas.engines.surrogate",
    "mlxas.phases.reflections",
    "mlxas.xrd.engine",
]


def _load_builtin() -> None:
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
