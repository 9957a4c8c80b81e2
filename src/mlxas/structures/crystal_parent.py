"""The parent crystal of a ``kind: crystal`` source: a structure file, a named prototype,
or a mineral of the AMCSD database shipped in the ``larixite`` package.

``file``
    one periodic structure read by :mod:`mlxas.structures.readers` (pymatgen for CIF,
    ASE for POSCAR and the rest); a file holding several structures is refused.
``prototype``
    a textbook structure built by pymatgen's ``Structure.from_spacegroup`` from its space
    group and Wyckoff positions (:data:`PROTOTYPES`), with ``species`` in the order of
    the table and lattice parameters ``a`` (and ``c``, ``u`` where the type has them).
    One-element cubic and hexagonal types take ASE's reference lattice constant when
    ``a`` is not given.
``amcsd``
    a mineral name (case-insensitive) or an AMCSD id.  Only the database file inside the
    installed package is read; nothing is downloaded.  A name with several entries
    resolves by :func:`choose_amcsd_entry`; ``amcsd_id`` pins one.

Every parent keeps a provenance line (``parent``) and its space group, so each generated
structure can say where it came from.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from mlxas.errors import ConfigError

__all__ = [
    "PROTOTYPES",
    "CrystalInputError",
    "ParentCrystal",
    "Prototype",
    "amcsd_entry",
    "check_prototype",
    "choose_amcsd_entry",
    "load_parent",
    "parent_kind",
    "prototype_crystal",
]


class CrystalInputError(ConfigError):
    """A crystal source entry that cannot be used; the message says which key and why."""

    @classmethod
    def at(cls, where: str, why: str) -> CrystalInputError:
        """The error for key ``where`` (e.g. ``strain.axes``) and reason ``why``."""
        return cls(f"{where}: {why}")


@dataclass(frozen=True)
class Prototype:
    """A structure type: space group (Hermann–Mauguin), lattice family and one Wyckoff
    position per species, in fractional coordinates (``"u"`` marks the internal
    parameter)."""

    spacegroup: str
    family: str  #: cubic, hexagonal or tetragonal
    sites: tuple[tuple[Any, Any, Any], ...]
    example: str
    u: float | None = None  #: default internal parameter


PROTOTYPES: dict[str, Prototype] = {
    "fcc": Prototype("Fm-3m", "cubic", ((0, 0, 0),), "Cu, Ni, Pt"),
    "bcc": Prototype("Im-3m", "cubic", ((0, 0, 0),), "Fe, W, Na"),
    "sc": Prototype("Pm-3m", "cubic", ((0, 0, 0),), "Po"),
    "hcp": Prototype("P6_3/mmc", "hexagonal", ((1 / 3, 2 / 3, 1 / 4),), "Co, Zn, Ti"),
    # pymatgen's Fd-3m is origin choice 1: the 8a site at (0, 0, 0).
    "diamond": Prototype("Fd-3m", "cubic", ((0, 0, 0),), "Ge, Si, C"),
    "rocksalt": Prototype("Fm-3m", "cubic", ((0, 0, 0), (0.5, 0.5, 0.5)), "NiO, MnO, NaCl"),
    "cesium_chloride": Prototype("Pm-3m", "cubic", ((0, 0, 0), (0.5, 0.5, 0.5)), "CsCl, NiAl"),
    "zincblende": Prototype("F-43m", "cubic", ((0, 0, 0), (0.25, 0.25, 0.25)), "ZnS, GaAs"),
    "fluorite": Prototype("Fm-3m", "cubic", ((0, 0, 0), (0.25, 0.25, 0.25)), "CaF2, CeO2"),
    "wurtzite": Prototype(
        "P6_3mc", "hexagonal", ((1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, "u")), "ZnO, GaN", u=0.375
    ),
    # ABX3: B at the origin in an X6 octahedron, A in the cube centre.
    "perovskite": Prototype(
        "Pm-3m", "cubic", ((0.5, 0.5, 0.5), (0, 0, 0), (0.5, 0, 0)), "SrTiO3 (Sr, Ti, O)"
    ),
    "rutile": Prototype("P4_2/mnm", "tetragonal", ((0, 0, 0), ("u", "u", 0)), "TiO2", u=0.305),
}


@dataclass(frozen=True)
class ParentCrystal:
    """A periodic crystal and where it came from."""

    atoms: Atoms
    parent: str  #: provenance line, e.g. ``amcsd:17026 Bunsenite NiO``
    spacegroup: str  #: international symbol found by spglib (symprec 0.01 Å)


def _spacegroup(atoms: Atoms) -> str:
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    struct = AseAtomsAdaptor.get_structure(atoms)
    return SpacegroupAnalyzer(struct, symprec=0.01).get_space_group_symbol()


def _parent(atoms: Atoms, parent: str) -> ParentCrystal:
    atoms = Atoms(
        atoms.get_chemical_symbols(),
        cell=atoms.cell,
        pbc=True,
        scaled_positions=atoms.get_scaled_positions(),
    )
    if atoms.cell.volume <= 1e-6:
        raise CrystalInputError(f"{parent}: the cell has no volume")
    return ParentCrystal(atoms, parent, _spacegroup(atoms))


def _reference_lattice(element: str, name: str) -> tuple[float, float | None]:
    from ase.data import atomic_numbers, reference_states

    state = reference_states[atomic_numbers[element]] or {}
    if state.get("symmetry") != name:
        raise CrystalInputError(
            f"prototype {name}: ASE has no {name} reference lattice for {element}; give `a`"
        )
    a = float(state["a"])
    return a, (a * float(state["c/a"]) if name == "hcp" else None)


def prototype_crystal(
    name: str,
    species: list[str],
    a: float | None = None,
    c: float | None = None,
    u: float | None = None,
) -> ParentCrystal:
    """The conventional cell of prototype ``name`` with ``species`` (one per Wyckoff
    position of :data:`PROTOTYPES`), lattice constants ``a``, ``c`` (Å) and parameter
    ``u`` (fractional)."""
    # pymatgen builds its space-group tables on first use (seconds); keep each result.
    parent = _prototype(name, tuple(species), a, c, u)
    return ParentCrystal(parent.atoms.copy(), parent.parent, parent.spacegroup)


def check_prototype(
    name: str, species: list[str], a: float | None, c: float | None, u: float | None
) -> tuple[float | None, float | None]:
    """Refuse a prototype entry that cannot be built (unknown type, wrong species count,
    missing or extra lattice parameters) without building it; returns ``(a, c)`` with
    ASE's reference values filled in for one-element types."""
    if name not in PROTOTYPES:
        close = difflib.get_close_matches(name, PROTOTYPES, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CrystalInputError(
            f"prototype: unknown structure type {name!r}{hint} (known: {', '.join(PROTOTYPES)})"
        )
    proto = PROTOTYPES[name]
    if len(species) != len(proto.sites):
        raise CrystalInputError(
            f"prototype {name}: needs {len(proto.sites)} species in this order "
            f"(like {proto.example}), got {species}"
        )
    if a is None:
        if len(species) != 1 or name not in ("fcc", "bcc", "sc", "hcp", "diamond"):
            raise CrystalInputError(f"prototype {name}: give the lattice constant `a` (Å)")
        a, c_ref = _reference_lattice(species[0], name)
        c = c if c is not None else c_ref
    if proto.family != "cubic" and c is None:
        raise CrystalInputError(f"prototype {name}: give the lattice constant `c` (Å)")
    if proto.family == "cubic" and c is not None:
        raise CrystalInputError(f"prototype {name}: a cubic type takes `a` only, not `c`")
    if u is not None and proto.u is None:
        raise CrystalInputError(f"prototype {name}: has no internal parameter `u`")
    return a, c


@cache
def _prototype(
    name: str, species: tuple[str, ...], a: float | None, c: float | None, u: float | None
) -> ParentCrystal:
    species = list(species)
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    a, c = check_prototype(name, species, a, c, u)
    proto = PROTOTYPES[name]
    uu = proto.u if u is None else float(u)
    lattice = {
        "cubic": lambda: Lattice.cubic(a),
        "hexagonal": lambda: Lattice.hexagonal(a, c),
        "tetragonal": lambda: Lattice.tetragonal(a, c),
    }[proto.family]()
    coords = [[uu if x == "u" else float(x) for x in site] for site in proto.sites]
    struct = Structure.from_spacegroup(proto.spacegroup, lattice, species, coords)
    desc = f"prototype:{name} {'-'.join(species)} a={a:.4f}" + (f" c={c:.4f}" if c else "")
    return _parent(AseAtomsAdaptor.get_atoms(struct), desc)


def _file_crystal(path: str | Path) -> ParentCrystal:
    from mlxas.structures.readers import StructureReadError, read_frames

    try:
        contents = read_frames(path)
    except StructureReadError as err:
        raise CrystalInputError(f"file: {err}") from None
    if contents.total != 1:
        raise CrystalInputError(
            f"file: {path} holds {contents.total} structures; a crystal source starts "
            "from one (split the file, or use a `files` source)"
        )
    atoms = contents.items[0][1]
    if not np.all(atoms.pbc):
        raise CrystalInputError(f"file: {path} holds a structure without a periodic cell")
    return _parent(atoms, f"file:{path}")


# --- AMCSD -----------------------------------------------------------------------------

_T_RE = re.compile(r"\bT\s*=\s*(-?[0-9.]+)\s*(K|C|°C)", re.I)
_P_RE = re.compile(r"\bP\s*=\s*([0-9.]+)\s*(GPa|kbar|MPa|bar)", re.I)
_P_UNIT = {"gpa": 1.0, "kbar": 0.1, "mpa": 1e-3, "bar": 1e-4}


@cache
def _amcsd():
    """The AMCSD database inside the installed larixite package, read-only.

    ``larixite.amcsd.get_amcsd`` would try to download the full database; the packaged
    file is opened directly instead.
    """
    from larixite.amcsd import AMCSD

    return AMCSD(read_only=True)


def _conditions(title: str) -> tuple[float | None, float | None]:
    """Temperature (K) and pressure (GPa) stated in an AMCSD publication title, if any."""
    t = p = None
    if m := _T_RE.search(title or ""):
        t = float(m.group(1)) + (273.15 if m.group(2).upper() != "K" else 0.0)
    if m := _P_RE.search(title or ""):
        p = float(m.group(1)) * _P_UNIT[m.group(2).lower()]
    return t, p


def _ordered(entry) -> bool:
    occ = entry.atoms_occupancy
    if occ in (None, 0, "0"):
        return True
    try:
        return min(float(x) for x in occ) >= 0.999
    except (TypeError, ValueError):
        return False


def _reduced_formula(formula: str) -> str:
    from pymatgen.core import Composition

    try:
        return Composition(formula.replace(" ", "")).reduced_formula
    except Exception:
        return formula


def choose_amcsd_entry(entries: list) -> Any:
    """One representative entry of a mineral with several AMCSD entries.

    The rule, in order: entries without partial occupancy; of those, the ones at ambient
    conditions (the title states no temperature and no pressure, or 273–313 K and at
    most 1e-4 GPa), if any; of those, the most frequent (space group, reduced formula),
    which sets aside high-pressure phases and solid solutions; of those, the entry with
    the median cell volume (lower median, ties to the lower id).
    """
    ordered = [e for e in entries if _ordered(e)]
    if not ordered:
        raise CrystalInputError("amcsd: every entry of this mineral has partial occupancy")

    def ambient(e) -> bool:
        t, p = _conditions(e.pub_title)
        return (t is None or 273.0 <= t <= 313.0) and (p is None or p <= 1e-4)

    pool = [e for e in ordered if ambient(e)] or ordered
    groups: dict[tuple[str, str], list] = {}
    for e in sorted(pool, key=lambda e: e.ams_id):
        groups.setdefault((str(e.hm_symbol).strip(), _reduced_formula(e.formula)), []).append(e)
    best = max(groups.values(), key=len)  # first (lowest id) group wins a tie
    best = sorted(best, key=lambda e: (float(e.cell_volume), e.ams_id))
    return best[(len(best) - 1) // 2]


def amcsd_entry(mineral: str | int | None, amcsd_id: int | None = None):
    """The AMCSD entry for a mineral name (with :func:`choose_amcsd_entry`) or an id."""
    db = _amcsd()
    key = amcsd_id if amcsd_id is not None else mineral
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
        entry = db.get_cif(int(key))
        if entry is None:
            raise CrystalInputError(f"amcsd: no entry with id {key} in the packaged database")
        if mineral is not None and not isinstance(mineral, int):
            name = entry.mineral.name
            if name.lower() != str(mineral).strip().lower():
                raise CrystalInputError(
                    f"amcsd: entry {key} is {name}, not {mineral!r}; drop one of the two keys"
                )
        return entry
    entries = db.find_cifs(mineral_name=str(mineral).strip())
    if not entries:
        names = sorted({n for n in db.all_minerals() if n and n != "<missing>"})
        close = difflib.get_close_matches(str(mineral).strip().title(), names, n=5, cutoff=0.6)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise CrystalInputError(
            f"amcsd: no mineral named {mineral!r} in the packaged AMCSD database{hint}"
        )
    return choose_amcsd_entry(entries)


def _amcsd_crystal(mineral: str | int | None, amcsd_id: int | None) -> ParentCrystal:
    from pymatgen.io.cif import CifParser

    from mlxas.structures.readers import StructureReadError, _ordered_atoms

    entry = amcsd_entry(mineral, amcsd_id)
    where = f"amcsd:{entry.ams_id}"
    try:
        struct = CifParser.from_str(entry.ciftext, occupancy_tolerance=1.0).parse_structures(
            primitive=False, on_error="raise"
        )[0]
        atoms = _ordered_atoms(struct, where, "")
    except StructureReadError as err:
        raise CrystalInputError(f"amcsd: entry {entry.ams_id}: {err.detail}") from None
    except Exception as err:
        raise CrystalInputError(
            f"amcsd: entry {entry.ams_id} is not a readable CIF: {err}"
        ) from None
    formula = _reduced_formula(entry.formula)
    return _parent(atoms, f"{where} {entry.mineral.name} {formula}")


def parent_kind(spec: dict[str, Any]) -> str:
    """``file``, ``prototype`` or ``amcsd``: the one parent key of an entry (checked, with
    a prototype's own keys, when the config is read)."""
    given = [k for k in ("file", "prototype", "amcsd") if spec.get(k) is not None]
    if spec.get("amcsd_id") is not None and "amcsd" not in given:
        given.append("amcsd")
    if len(given) != 1:
        raise CrystalInputError(
            "give exactly one of `file`, `prototype` and `amcsd` for the parent crystal"
            + (f" (got {', '.join(given)})" if given else "")
        )
    lattice_keys = [k for k in ("a", "c", "u", "species") if spec.get(k) is not None]
    if given[0] != "prototype" and lattice_keys:
        raise CrystalInputError(
            f"{', '.join(lattice_keys)}: apply to a prototype only; strain a file or AMCSD "
            "crystal with `strain`"
        )
    if given[0] == "prototype":
        if not spec.get("species"):
            raise CrystalInputError("prototype: give `species`, e.g. [Ni, O] for rocksalt NiO")
        check_prototype(
            spec["prototype"], list(spec["species"]), spec.get("a"), spec.get("c"), spec.get("u")
        )
    return given[0]


def load_parent(spec: dict[str, Any]) -> ParentCrystal:
    """The parent crystal of a source entry: exactly one of ``file``, ``prototype``,
    ``amcsd`` (with ``amcsd_id``) must be given."""
    kind = parent_kind(spec)
    if kind == "file":
        return _file_crystal(spec["file"])
    if kind == "amcsd":
        return _amcsd_crystal(spec.get("amcsd"), spec.get("amcsd_id"))
    return prototype_crystal(
        spec["prototype"], list(spec["species"]), spec.get("a"), spec.get("c"), spec.get("u")
    )
