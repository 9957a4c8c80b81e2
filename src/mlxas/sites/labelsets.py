"""Label sets: named groups of label columns, computed by the ``labels`` stage.

A label set is a subclass of :class:`LabelSet` registered by name with
:func:`register_label_set`.  The config lists the sets to compute (``labels.sets``) and
each set reads its own section ``labels.<name>`` into its ``settings_class`` once.
``compute`` gets the structures of one source and its item table (the ``sites`` stage's
output: one row per absorbing site, or one per structure with ``sites.mode:
structure``) and returns :class:`LabelColumns`, one row per item.

The ``labels`` stage writes the columns of every set to ``labels/<source>.parquet``,
with their units, grids and which of them are model targets in the file's metadata;
``gather`` copies the targets into ``dataset.h5``, and the config check refuses a model
target that no listed set provides.

Adding a set: subclass :class:`LabelSet` in a module, decorate it with
:func:`register_label_set`, add the module to :data:`BUILTIN_MODULES` and describe its
section under ``labels`` in the config schema.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from ase import Atoms

from mlxas.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BUILTIN_MODULES",
    "LabelColumns",
    "LabelSet",
    "LabelSettings",
    "compute_labels",
    "label_set_class",
    "label_set_names",
    "read_labels",
    "register_label_set",
    "write_labels",
]

#: Modules that register the built-in label sets (imported on first look-up).
BUILTIN_MODULES: list[str] = [
    "mlxas.sites.coordination",
    "mlxas.sites.shells",
    "mlxas.xrd.labels",
    "mlxas.xanes.labels",
]

_REGISTRY: dict[str, type[LabelSet]] = {}


@dataclass
class LabelColumns:
    """Labels of N items: ``values`` maps a column to ``[N]`` or ``[N, m]`` (a vector label
    on the grid ``grids[column]`` = (values, unit)); ``units`` per column; ``targets``:
    the columns a model may predict; ``info``: JSON facts about how they were computed
    (e.g. the first-shell radius); ``classes``: for a categorical column, its class names
    (its values are the integer codes 0..n-1 into them; models give it a softmax head)."""

    values: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    grids: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)


class LabelSet(ABC):
    """One named set of labels.  Subclasses set the class attributes and ``compute``."""

    #: registry name, listed in ``labels.sets``; its settings are ``labels.<name>``
    name: ClassVar[str]
    #: item units the set can label: ``site`` (absorbing sites), ``structure``
    units: ClassVar[tuple[str, ...]]
    #: frozen dataclass of the set's settings
    settings_class: ClassVar[type]

    def __init__(self, settings: Any):
        self.settings = settings

    @classmethod
    def settings_from_config(cls, section: Mapping[str, Any] | None) -> Any:
        """Typed settings from the ``labels.<name>`` section (schema defaults filled in)."""
        from mlxas.settings import from_mapping

        return from_mapping(cls.settings_class, section, f"labels.{cls.name}")

    @abstractmethod
    def provides(self, target: str) -> bool:
        """Whether ``target`` is a column this set writes (checked before any job runs)."""

    @abstractmethod
    def compute(
        self, images: Sequence[Atoms], items: pd.DataFrame, absorber: str | None
    ) -> LabelColumns:
        """Labels of every row of ``items`` (columns ``structure_id``, ``site_index``;
        ``site_index`` is -1 for whole structures); ``images`` are the source's
        structures (``atoms.info["structure_id"]``)."""


def register_label_set(cls: type[LabelSet]) -> type[LabelSet]:
    """Class decorator: make ``cls`` selectable in ``labels.sets``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ConfigError(f"label set {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def label_set_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def label_set_class(name: str) -> type[LabelSet]:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"labels.sets: unknown label set {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


@dataclass(frozen=True)
class LabelSettings:
    """The ``labels`` section: the sets to compute and each set's typed settings."""

    sets: tuple[str, ...] = ("coordination",)
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> LabelSettings:
        sets = tuple(section.get("sets", ("coordination",)))
        return cls(
            sets=sets,
            settings={n: label_set_class(n).settings_from_config(section.get(n)) for n in sets},
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSettings:
        """Back from :meth:`to_dict` (the stage command's ``--spec``)."""
        return cls.from_config({"sets": data["sets"], **data["settings"]})

    def to_dict(self) -> dict[str, Any]:
        from mlxas.settings import to_dict

        return {"sets": list(self.sets), "settings": to_dict(self.settings)}

    def label_sets(self) -> list[LabelSet]:
        return [label_set_class(n)(self.settings[n]) for n in self.sets]


def compute_labels(
    images: Sequence[Atoms], items: pd.DataFrame, absorber: str | None, settings: LabelSettings
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every set's labels of ``items``: a table (``site_id`` + label columns, vector labels
    as arrays) and the metadata :func:`write_labels` stores."""
    import pandas as pd

    table = pd.DataFrame({"site_id": items["site_id"].to_numpy()})
    meta: dict[str, Any] = {"settings": settings.to_dict(), "columns": {}, "info": {}}
    for label_set in settings.label_sets():
        cols = label_set.compute(images, items, absorber)
        for name, values in cols.values.items():
            if name in meta["columns"]:
                raise ConfigError(f"labels: column {name!r} written by two label sets")
            values = np.asarray(values)
            table[name] = list(values.astype(np.float32)) if values.ndim > 1 else values
            grid = cols.grids.get(name)
            meta["columns"][name] = {
                "set": label_set.name,
                "unit": cols.units.get(name, ""),
                "target": name in cols.targets,
                "grid": None if grid is None else {"values": np.asarray(grid[0]).tolist(),
                                                   "unit": grid[1]},
            }  # fmt: skip
            if name in cols.classes:
                meta["columns"][name]["classes"] = [str(c) for c in cols.classes[name]]
        meta["info"][label_set.name] = cols.info
    return table, meta


def write_labels(table: pd.DataFrame, meta: Mapping[str, Any], path: str | Path) -> None:
    """The label table as Parquet (vector labels as float32 lists), metadata under
    ``mlxas.labels``; written under a temporary name and renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, names = [], []
    for name in table.columns:
        col = table[name]
        if len(col) and isinstance(col.iloc[0], np.ndarray):
            flat = np.stack(col.to_numpy()).astype(np.float32)
            offsets = pa.array(np.arange(0, flat.size + 1, flat.shape[1], dtype=np.int32))
            arrays.append(pa.ListArray.from_arrays(offsets, pa.array(flat.ravel())))
        else:
            arrays.append(pa.array(col.to_numpy()))
        names.append(name)
    out = pa.Table.from_arrays(arrays, names=names)
    out = out.replace_schema_metadata({b"mlxas.labels": json.dumps(meta, sort_keys=True).encode()})
    tmp = Path(f"{path}.tmp")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(out, tmp)
    tmp.replace(path)


def read_labels(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A label table (vector labels as arrays) and its metadata."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"mlxas.labels", b"{}"))
    df = table.to_pandas()
    for name, col in meta.get("columns", {}).items():
        if col.get("grid") is not None and name in df:
            df[name] = [np.asarray(v, dtype=np.float32) for v in df[name]]
    return df, meta
