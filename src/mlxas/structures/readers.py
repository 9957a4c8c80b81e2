"""Readers for users' structure files, through ASE and pymatgen (no parsers of our own).

=====================  ===========================  =====================================
file                   read by                      notes
=====================  ===========================  =====================================
``*.cif``              pymatgen ``CifParser``       every data block; partial occupancy
                                                    is refused, not rounded
``*.json``             pymatgen (monty)             Structure, Molecule (also inside a
                                                    TransformedStructure or an entry), a
                                                    list of them, or a Trajectory
POSCAR, CONTCAR        ``ase.io`` (``vasp``)
XDATCAR                ``ase.io`` (``vasp-xdatcar``) all frames
``*.xyz``, extxyz      ``ase.io`` (``extxyz``)      all frames
``*.traj``             ``ase.io`` (``traj``)        all frames
LAMMPS text dump       ``ase.io``                   needs an ``element`` column or the
                       (``lammps-dump-text``)       ``species`` list (type 1, 2, ...)
anything else          ``ase.io`` by its format     ``format`` in the source config
=====================  ===========================  =====================================

``frames`` (a Python slice such as ``"::10"``) selects frames of multi-frame files.
Every problem is a :class:`StructureReadError` naming the file and the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

__all__ = [
    "PYMATGEN_FORMATS",
    "FileContents",
    "StructureReadError",
    "parse_frames",
    "read_file",
    "read_frames",
]

#: Formats read through pymatgen: CIF (to see partial occupancies) and pymatgen's JSON.
PYMATGEN_FORMATS = ("cif", "json", "pymatgen")


class StructureReadError(ValueError):
    """A structure file cannot be used; the message names the file and the reason.

    ``reason`` is machine-readable (``unreadable``, ``partial_occupancy``); ``detail``
    is one line for people.
    """

    def __init__(self, path: str | Path, reason: str, detail: str):
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {detail}")


def parse_frames(frames: str | None) -> slice:
    """``"::10"``, ``"5:"``, ``"-1"`` or ``None`` (all) as a slice of frame indices."""
    if frames is None or str(frames).strip() in ("", ":"):
        return slice(None)
    text = str(frames).strip()
    try:
        if ":" not in text:
            i = int(text)
            return slice(i, i + 1 if i != -1 else None)
        parts = [int(p) if p.strip() else None for p in text.split(":")]
    except ValueError:
        raise ValueError(f"frames: {frames!r} is not a slice like '::10' or '100:'") from None
    if len(parts) > 3:
        raise ValueError(f"frames: {frames!r} is not a slice like '::10' or '100:'")
    return slice(*parts)


@dataclass
class FileContents:
    """What :func:`read_frames` found in one file.

    ``items`` pairs each selected structure with its index in the file; ``total`` counts
    all structures in the file; ``trajectory`` is true for frames of a simulation
    (multi-frame extxyz, ASE .traj, LAMMPS dump, XDATCAR, pymatgen Trajectory) and false
    for independent structures (CIF data blocks, a JSON list, a single structure).
    """

    items: list[tuple[int, Atoms]]
    total: int
    trajectory: bool


def read_frames(
    path: str | Path,
    fmt: str | None = None,
    frames: str | None = None,
    species: Sequence[str] | None = None,
) -> FileContents:
    """The structures of ``path`` selected by ``frames`` (see :class:`FileContents`).

    ``fmt`` forces a reader (an ASE format name, or ``cif``/``json``/``pymatgen`` for
    pymatgen); ``species`` names the elements of LAMMPS atom types 1, 2, ...
    """
    path = Path(path)
    if not path.is_file():
        raise StructureReadError(path, "unreadable", "file does not exist")
    if path.stat().st_size == 0:
        raise StructureReadError(path, "unreadable", "file is empty")
    try:
        selection = parse_frames(frames)
    except ValueError as err:
        raise StructureReadError(path, "unreadable", str(err)) from None
    reader = _reader_name(path, fmt)
    if reader == "pymatgen-cif":
        images, trajectory = _read_cif(path), False
    elif reader == "pymatgen-json":
        images, trajectory = _read_pymatgen_json(path)
    else:
        images = _read_ase(path, reader, species)
        trajectory = len(images) > 1
    total = len(images)
    chosen = list(range(total))[selection]
    if not chosen:
        detail = (
            "file holds no structure"
            if total == 0
            else f"frames={frames!r} selects none of its {total} frames"
        )
        raise StructureReadError(path, "unreadable", detail)
    return FileContents([(k, images[k]) for k in chosen], total, trajectory)


def read_file(
    path: str | Path,
    fmt: str | None = None,
    frames: str | None = None,
    species: Sequence[str] | None = None,
) -> list[Atoms]:
    """All structures (frames) of ``path`` selected by ``frames``, as ASE ``Atoms``."""
    return [atoms for _, atoms in read_frames(path, fmt, frames, species).items]


def _reader_name(path: Path, fmt: str | None) -> str:
    suffix = path.suffix.lower()
    if fmt == "cif" or (fmt is None and suffix == ".cif"):
        return "pymatgen-cif"
    if fmt in ("json", "pymatgen") or (fmt is None and suffix == ".json"):
        return "pymatgen-json"
    if fmt is not None:
        return fmt
    from ase.io.formats import filetype

    try:
        return filetype(str(path), guess=True)
    except Exception as err:  # ASE raises UnknownFileTypeError and others
        raise StructureReadError(
            path, "unreadable", f"cannot tell the file format ({err}); set `format` for this source"
        ) from None


def _ordered_atoms(structure, path: Path, label: str) -> Atoms:
    """ASE atoms of a pymatgen Structure/Molecule; refuses partial occupancy."""
    from pymatgen.io.ase import AseAtomsAdaptor

    if not structure.is_ordered:
        bad = next(i for i, site in enumerate(structure) if not site.is_ordered)
        raise StructureReadError(
            path,
            "partial_occupancy",
            f"{label}site {bad} is partially occupied ({structure[bad].species}); "
            "give an ordered structure (e.g. a supercell with explicit atoms)",
        )
    return AseAtomsAdaptor.get_atoms(structure)


def _read_cif(path: Path) -> list[Atoms]:
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser(str(path), occupancy_tolerance=1.0)
            structures = parser.parse_structures(primitive=False, on_error="raise")
        except Exception as err:  # pymatgen raises many types for malformed files
            msg = _one_line(err) or "; ".join(_one_line(w.message) for w in caught)
            if "occupanc" in msg.lower():
                raise StructureReadError(path, "partial_occupancy", msg) from None
            raise StructureReadError(path, "unreadable", f"not a valid CIF: {msg}") from None
    multi = len(structures) > 1
    return [
        _ordered_atoms(s, path, f"data block {i}: " if multi else "")
        for i, s in enumerate(structures)
    ]


def _read_pymatgen_json(path: Path) -> tuple[list[Atoms], bool]:
    from monty.serialization import loadfn
    from pymatgen.core import Molecule, Structure
    from pymatgen.core.trajectory import Trajectory

    try:
        obj = loadfn(str(path))
    except Exception as err:  # invalid JSON, unknown @class, ...
        raise StructureReadError(path, "unreadable", f"not valid JSON: {_one_line(err)}") from None
    items = obj if isinstance(obj, list) else [obj]
    out = []
    trajectory = False
    for i, item in enumerate(items):
        label = f"entry {i}: " if len(items) > 1 else ""
        try:
            if isinstance(item, dict):
                item = (Structure if "lattice" in item else Molecule).from_dict(item)
            # structures wrapped with their history or energy: the structure itself
            if isinstance(getattr(item, "final_structure", None), Structure):
                item = item.final_structure
            elif isinstance(getattr(item, "structure", None), Structure | Molecule):
                item = item.structure
            if isinstance(item, Trajectory):
                trajectory = len(items) == 1
                out.extend(
                    _ordered_atoms(s, path, f"{label}frame {k}: ") for k, s in enumerate(item)
                )
                continue
        except StructureReadError:
            raise
        except Exception as err:
            raise StructureReadError(
                path, "unreadable", f"{label}not a pymatgen structure: {_one_line(err)}"
            ) from None
        if not isinstance(item, Structure | Molecule):
            raise StructureReadError(
                path,
                "unreadable",
                f"{label}holds a {type(item).__name__}, not a pymatgen Structure or Molecule",
            )
        out.append(_ordered_atoms(item, path, label))
    return out, trajectory


def _read_ase(path: Path, fmt: str, species: Sequence[str] | None) -> list[Atoms]:
    import ase.io

    kwargs = {}
    if fmt == "lammps-dump-text":
        kwargs["specorder"] = _lammps_species(path, species)
    elif species:
        raise StructureReadError(
            path, "unreadable", f"`species` applies to LAMMPS dumps only; this file is {fmt}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            images = ase.io.read(str(path), index=":", format=fmt, **kwargs)
    except StructureReadError:
        raise
    except Exception as err:  # ASE raises many types for malformed or unknown files
        raise StructureReadError(
            path, "unreadable", f"cannot read as {fmt} with ASE: {_one_line(err)}"
        ) from None
    if isinstance(images, Atoms):
        images = [images]
    for k, atoms in enumerate(images):
        if not np.isfinite(atoms.positions).all():
            raise StructureReadError(path, "unreadable", f"frame {k} has non-finite coordinates")
    return list(images)


def _lammps_species(path: Path, species: Sequence[str] | None) -> list[str] | None:
    """The type→element list for a LAMMPS dump, or an error if elements are unknowable.

    Without an ``element`` (or ``mass``) column ASE would take type 1 as hydrogen.
    """
    columns: list[str] = []
    with open(path, errors="replace") as fh:
        for line in fh:
            if line.startswith("ITEM: ATOMS"):
                columns = line.split()[2:]
                break
    if "element" in columns or "mass" in columns:
        return list(species) if species else None
    if not species:
        raise StructureReadError(
            path,
            "unreadable",
            "LAMMPS dump has atom types but no element column; "
            "give `species: [El1, El2, ...]` for types 1, 2, ... in the source config",
        )
    return list(species)


def _one_line(obj: object) -> str:
    text = str(obj).strip().splitlines()
    return text[0] if text else type(obj).__name__
