"""Kinds of structure source, by name: each a frozen dataclass with a ``generate`` method.

A config ``structures`` entry names its ``kind``; :func:`source_from_config` reads the
entry once into that kind's class.  A kind is a frozen dataclass decorated with
:func:`register_source`, with

- ``kind`` (class attribute): the config value;
- a ``name`` field, and one field per config key of the entry (documented with units);
- ``generate(work_dir)`` yielding ``(name, frame, origin, Atoms | Rejection)``, where
  ``frame`` is the trajectory frame (None for independent structures), ``origin`` the
  file or generator it came from, and ``work_dir`` a folder for restartable state;
- ``elements()``: the elements the source is known to hold before it runs (checked
  against xraydb with the config); ``input_files()`` optionally lists the files it reads,
  so that editing one reruns the source;
- optionally ``structure_id(atoms)``: the structure id when the geometry alone does not
  tell two structures apart (the crystal source's static structures that differ only in
  the temperature of their DEBYE card); the default is the geometry hash.

A structure's scalar ``atoms.info`` entries (its provenance: parent crystal, strain,
temperature, ...) and its extra per-atom arrays (``surface``, ``parent_index``) are kept
in ``structures.extxyz`` beside the keys the structures stage sets.

Built in: ``nanoparticles`` (:mod:`mlxas.structures.nanoparticles`), ``md``
(:mod:`mlxas.structures.md`), ``crystal`` (:mod:`mlxas.structures.crystal`),
``random_molecular`` (:mod:`mlxas.phases.sources`), ``prototypes``
(:mod:`mlxas.xanes.source`) and ``files`` (here).  Adding a kind: write the class in a
module, add the module to :data:`BUILTIN_MODULES` and describe the entry in the config
schema (``structures`` items).
"""

from __future__ import annotations

import glob
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxas.errors import ConfigError

__all__ = [
    "BUILTIN_MODULES",
    "FilesSource",
    "expand_paths",
    "register_source",
    "source_from_config",
    "source_kinds",
]

BUILTIN_MODULES = [
    "mlxas.structures.nanoparticles",
    "mlxas.structures.md",
    "mlxas.structures.crystal",
    "mlxas.phases.sources",
    "mlxas.xrd.sources",
    "mlxas.xanes.source",
]

_KINDS: dict[str, type] = {}


def register_source(cls: type) -> type:
    """Class decorator: make the source class selectable by its ``kind``."""
    if cls.kind in _KINDS and _KINDS[cls.kind] is not cls:
        raise ConfigError(f"structure source kind {cls.kind!r} registered twice")
    _KINDS[cls.kind] = cls
    return cls


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def source_kinds() -> list[str]:
    _load_builtin()
    return sorted(_KINDS)


def source_from_config(entry: Mapping[str, Any]) -> Any:
    """The typed source of one ``structures`` entry (schema defaults filled in)."""
    from mlxas.settings import from_mapping

    _load_builtin()
    kind = entry.get("kind")
    if kind not in _KINDS:
        raise ConfigError(
            f"structures: unknown source kind {kind!r} (known: {', '.join(sorted(_KINDS))})"
        )
    fields = {k: v for k, v in entry.items() if k != "kind"}
    return from_mapping(_KINDS[kind], fields, f"structures.{entry.get('name', '?')}")


def expand_paths(patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Files matching each pattern, sorted per pattern; a pattern matching nothing is kept
    as it is, so that the missing file is rejected, not dropped."""
    out: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        out.extend(matches if matches else [pattern])
    return out


@register_source
@dataclass(frozen=True)
class FilesSource:
    """A ``kind: files`` source: structure files read with ASE or pymatgen.

    ``paths``: files or glob patterns (relative to the working directory); ``format``: a
    reader name (None guesses from the file name); ``frames``: a slice such as ``"::10"``
    of trajectory frames; ``species``: elements of LAMMPS atom types 1, 2, ...
    """

    kind = "files"
    name: str
    paths: tuple[str, ...]
    format: str | None = None
    frames: str | None = None
    species: tuple[str, ...] | None = None

    def elements(self) -> tuple[str, ...]:
        return tuple(self.species or ())

    def input_files(self) -> list[str]:
        return sorted(f for pattern in self.paths for f in glob.glob(pattern))

    def generate(self, work_dir: Path | None = None) -> Iterator:
        from mlxas.structures.checks import Rejection
        from mlxas.structures.readers import StructureReadError, read_frames

        for path in expand_paths(self.paths):
            try:
                contents = read_frames(path, self.format, self.frames, self.species)
            except StructureReadError as err:
                yield "", None, str(path), Rejection(str(path), None, err.reason, err.detail)
                continue
            for k, atoms in contents.items:
                name = Path(path).stem + (f"_{k:06d}" if contents.total > 1 else "")
                # Trajectory frames keep their index; independent structures have none.
                frame = k if contents.trajectory else None
                origin = str(path) + (f"@{k}" if frame is None and contents.total > 1 else "")
                yield name, frame, origin, atoms
