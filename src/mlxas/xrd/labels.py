"""Structure labels for diffraction: crystal system, space group and structure type.

:func:`structure_labels` is the label function for ``sites.mode: structure`` (one row per
structure): spglib (through pymatgen's ``SpacegroupAnalyzer``) at ``symprec`` Å and
``angle_tolerance`` degrees gives the space group; the crystal system follows from its
number; the structure type is the name of the prototype of ``mlxas.xrd.prototypes`` that
pymatgen's ``StructureMatcher`` matches with species ignored (``fit_anonymous``), else
``other``.  ``prototype_label`` is an AFLOW-style key (anonymous formula, Pearson symbol,
space group, Wyckoff letters per element) that names the structure type of any crystal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from mlxas.sites.labelsets import LabelColumns, LabelSet, register_label_set

__all__ = [
    "CRYSTAL_COLUMNS",
    "CRYSTAL_SYSTEMS",
    "LABEL_NAMES",
    "CrystalLabels",
    "StructureLabelSettings",
    "class_names",
    "crystal_system_index",
    "space_group_symbols",
    "structure_labels",
    "structure_types",
]

CRYSTAL_SYSTEMS = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)
#: Last space-group number of each crystal system (International Tables).
_SYSTEM_ENDS = (2, 15, 74, 142, 167, 194, 230)
_PEARSON_SYSTEM = ("a", "m", "o", "t", "h", "h", "c")

#: Columns :func:`structure_labels` returns.
LABEL_NAMES = (
    "crystal_system",
    "crystal_system_name",
    "space_group",
    "space_group_symbol",
    "structure_type",
    "structure_type_name",
    "prototype_label",
)


@dataclass(frozen=True)
class StructureLabelSettings:
    symprec: float = 0.01  #: Å, spglib distance tolerance
    angle_tolerance: float = 5.0  #: degrees, spglib angle tolerance
    match_prototypes: bool = True
    ltol: float = 0.2  #: StructureMatcher fractional length tolerance
    stol: float = 0.3  #: StructureMatcher site tolerance (fraction of (V/n)^(1/3))
    matcher_angle_tol: float = 5.0  #: StructureMatcher angle tolerance, degrees


def crystal_system_index(space_group: int) -> int:
    """Index into :data:`CRYSTAL_SYSTEMS` of a space-group number 1..230."""
    if not 1 <= space_group <= 230:
        raise ValueError(f"space group number {space_group} is not in 1..230")
    return next(i for i, end in enumerate(_SYSTEM_ENDS) if space_group <= end)


@cache
def structure_types() -> tuple[str, ...]:
    """Class names of the structure-type label: the prototypes, then ``other``."""
    from mlxas.xrd.prototypes import prototype_names

    return (*prototype_names(), "other")


@cache
def _references() -> tuple[tuple[str, int, str, Any], ...]:
    """(name, space group, anonymous formula, structure) of each prototype."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from mlxas.xrd.prototypes import prototype_names, reference_structure

    out = []
    for name in prototype_names():
        s = reference_structure(name)
        sg = SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number()
        out.append((name, sg, s.composition.anonymized_formula, s))
    return tuple(out)


@cache
def _matcher(ltol: float, stol: float, angle_tol: float):
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(ltol=ltol, stol=stol, angle_tol=angle_tol, primitive_cell=True)


def _to_structure(obj: Any):
    from pymatgen.core import Structure

    if isinstance(obj, Structure):
        return obj
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_structure(obj)


def _prototype_label(structure, data: Any, number: int, symbol: str) -> str:
    """AFLOW-style key: e.g. ``AB_cF8_225_a_b`` for rock salt."""
    comp = structure.composition
    letters: dict[str, list[str]] = defaultdict(list)
    for i in sorted(set(data.equivalent_atoms)):
        letters[structure[int(i)].specie.symbol].append(data.wyckoffs[int(i)])
    # Elements ordered by amount, ties by their Wyckoff letters (species-agnostic).
    groups = sorted(("".join(sorted(v)), comp[el]) for el, v in letters.items())
    groups.sort(key=lambda g: g[1])
    centring = symbol[0] if symbol[0] != "R" else "R"
    n_conv = len(data.std_types)
    pearson = f"{_PEARSON_SYSTEM[crystal_system_index(number)]}{centring}{n_conv}"
    return f"{comp.anonymized_formula}_{pearson}_{number}_" + "_".join(g[0] for g in groups)


def structure_labels(
    atoms_or_structure: Any, settings: StructureLabelSettings | None = None
) -> dict[str, Any]:
    """Labels of one ordered crystal (ASE ``Atoms`` or pymatgen ``Structure``).

    Returns ``crystal_system`` (index into :data:`CRYSTAL_SYSTEMS`), ``space_group``
    (1..230), ``structure_type`` (index into :func:`structure_types`), their names and
    ``prototype_label``.  Raises ValueError when spglib finds no symmetry at the
    tolerance (the message names it).
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    st = settings or StructureLabelSettings()
    s = _to_structure(atoms_or_structure)
    try:
        sga = SpacegroupAnalyzer(s, symprec=st.symprec, angle_tolerance=st.angle_tolerance)
        data = sga.get_symmetry_dataset()
    except Exception as err:
        raise ValueError(f"spglib found no space group at symprec={st.symprec} Å: {err}") from None
    number, symbol = int(data.number), str(data.international)
    stype = "other"
    if st.match_prototypes:
        anon = s.composition.anonymized_formula
        matcher = _matcher(st.ltol, st.stol, st.matcher_angle_tol)
        for name, sg, ref_anon, ref in _references():
            if sg == number and ref_anon == anon and matcher.fit_anonymous(s, ref):
                stype = name
                break
    system = crystal_system_index(number)
    return {
        "crystal_system": system,
        "crystal_system_name": CRYSTAL_SYSTEMS[system],
        "space_group": number,
        "space_group_symbol": symbol,
        "structure_type": structure_types().index(stype),
        "structure_type_name": stype,
        "prototype_label": _prototype_label(s, data, number, symbol),
    }


#: Class columns of the ``crystal`` label set (model targets).
CRYSTAL_COLUMNS = ("crystal_system", "space_group", "structure_type")


def class_names(column: str) -> tuple[str, ...]:
    """Class names of a ``crystal`` column, by code: the seven crystal systems; the 230
    space groups as ``"<number> <short symbol>"`` (code = number - 1); the structure
    types (prototype names, then ``other``)."""
    if column == "crystal_system":
        return CRYSTAL_SYSTEMS
    if column == "space_group":
        return tuple(f"{n} {sym}" for n, sym in enumerate(space_group_symbols(), start=1))
    if column == "structure_type":
        return structure_types()
    raise KeyError(f"{column!r} is not a class column of the crystal label set")


@cache
def space_group_symbols() -> tuple[str, ...]:
    """Short Hermann–Mauguin symbols of space groups 1..230 (index = number - 1), from
    spglib's table (the first Hall setting of each number)."""
    import spglib

    symbols: dict[int, str] = {}
    for hall in range(1, 531):
        t = spglib.get_spacegroup_type(hall)
        symbols.setdefault(int(t.number), str(t.international_short))
    return tuple(symbols[n] for n in range(1, 231))


@register_label_set
class CrystalLabels(LabelSet):
    """``labels.sets: [crystal]``: per whole structure, from :func:`structure_labels` on
    the stored structure, the class columns ``crystal_system`` (0..6), ``space_group``
    (code = space-group number - 1) and ``structure_type`` (index into the prototype
    names + ``other``), with their class names (:func:`class_names`), and
    ``space_group_number`` (1..230, not a class column).  Every item of one structure
    (``sites.per_structure``) gets that structure's labels."""

    name = "crystal"
    units = ("structure",)
    settings_class = StructureLabelSettings

    def provides(self, target: str) -> bool:
        return target in (*CRYSTAL_COLUMNS, "space_group_number")

    def compute(self, images, items, absorber) -> LabelColumns:
        by_id = {str(a.info["structure_id"]): a for a in images}
        sids = items["structure_id"].astype(str).tolist()
        found: dict[str, dict[str, Any]] = {}
        for sid in dict.fromkeys(sids):
            try:
                found[sid] = structure_labels(by_id[sid], self.settings)
            except ValueError as err:
                name = by_id[sid].info.get("name", "")
                raise ValueError(f"labels.crystal: structure {sid} ({name}): {err}") from None
        number = np.array([found[s]["space_group"] for s in sids], np.int64)
        values = {
            "crystal_system": np.array([found[s]["crystal_system"] for s in sids], np.int64),
            "space_group": number - 1,
            "structure_type": np.array([found[s]["structure_type"] for s in sids], np.int64),
            "space_group_number": number,
        }
        info = {"symprec": self.settings.symprec, "angle_tolerance": self.settings.angle_tolerance}
        classes = {c: class_names(c) for c in CRYSTAL_COLUMNS}
        return LabelColumns(values, targets=CRYSTAL_COLUMNS, info=info, classes=classes)
