"""A small table of structure prototypes, built with pymatgen's
``Structure.from_spacegroup`` from their Wyckoff positions (International Tables settings
as pymatgen uses them: origin choice 1 for Fd-3m, hexagonal axes for R-3c).

Each prototype has roles (A, B, X, ...) with reference species and lattice, free
coordinates named in ``params``, and pools of chemistries.  :func:`prototype_structure`
builds one instance: chosen species, the lattice scaled so that the nearest-neighbour
pair's distance follows the sum of the two elements' atomic radii, small random changes
of the lattice and the free coordinates.  The table also serves as the reference set of
structure types for the labels (``mlxas.xrd.labels``) and as the impurity phases.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

__all__ = ["PROTOTYPES", "Prototype", "prototype_names", "prototype_structure"]

_ALKALI = ("Li", "Na", "K", "Rb", "Cs")
_HALIDE = ("F", "Cl", "Br", "I")
_DIVALENT = ("Mg", "Ca", "Sr", "Ba", "Mn", "Fe", "Co", "Ni", "Zn", "Cd")
_CHALC = ("O", "S", "Se", "Te")


@dataclass(frozen=True)
class Prototype:
    name: str
    spacegroup: str  #: Hermann–Mauguin symbol as pymatgen reads it
    lattice: str  #: cubic | tetragonal | hexagonal
    a: float  #: reference lattice parameters, Å
    c: float
    #: (role index, fractional coordinates; a string names a free parameter)
    sites: tuple[tuple[int, tuple[Any, Any, Any]], ...]
    params: tuple[tuple[str, float], ...]  #: free coordinates and reference values
    reference: tuple[str, ...]  #: reference species per role
    chemistries: tuple[tuple[tuple[str, ...], ...], ...]  #: per chemistry, a pool per role


def _p(name, sg, lat, a, c, sites, params, ref, chem) -> Prototype:
    return Prototype(name, sg, lat, a, c, tuple(sites), tuple(params), tuple(ref), tuple(chem))


_T = 1.0 / 3.0
PROTOTYPES: dict[str, Prototype] = {
    p.name: p
    for p in (
        _p("fcc", "Fm-3m", "cubic", 3.615, 0, [(0, (0, 0, 0))], [], ["Cu"],
           [[("Cu", "Ag", "Au", "Ni", "Pd", "Pt", "Al", "Pb", "Ca", "Sr", "Rh", "Ir")]]),
        _p("bcc", "Im-3m", "cubic", 2.866, 0, [(0, (0, 0, 0))], [], ["Fe"],
           [[("Fe", "Cr", "V", "Nb", "Mo", "Ta", "W", "Li", "Na", "K", "Ba")]]),
        _p("hcp", "P6_3/mmc", "hexagonal", 3.209, 5.211, [(0, (_T, 2 * _T, 0.25))], [], ["Mg"],
           [[("Mg", "Ti", "Zr", "Hf", "Co", "Zn", "Cd", "Be", "Sc", "Y", "Ru", "Os", "Re")]]),
        _p("diamond", "Fd-3m", "cubic", 5.431, 0, [(0, (0, 0, 0))], [], ["Si"],
           [[("C", "Si", "Ge", "Sn")]]),
        _p("rocksalt", "Fm-3m", "cubic", 5.64, 0, [(0, (0, 0, 0)), (1, (0.5, 0.5, 0.5))], [],
           ["Na", "Cl"], [[_ALKALI, _HALIDE], [_DIVALENT, _CHALC]]),
        _p("cesium_chloride", "Pm-3m", "cubic", 4.12, 0, [(0, (0, 0, 0)), (1, (0.5, 0.5, 0.5))],
           [], ["Cs", "Cl"], [[("Cs", "Rb", "Tl"), ("Cl", "Br", "I")],
                              [("Cu", "Ni", "Fe", "Co", "Ag"), ("Zn", "Al", "Mg", "Be")]]),
        _p("zincblende", "F-43m", "cubic", 5.41, 0, [(0, (0, 0, 0)), (1, (0.25, 0.25, 0.25))],
           [], ["Zn", "S"], [[("B", "Al", "Ga", "In"), ("N", "P", "As", "Sb")],
                             [("Zn", "Cd", "Hg", "Be"), ("S", "Se", "Te")],
                             [("Cu", "Ag"), ("Cl", "Br", "I")]]),
        _p("wurtzite", "P6_3mc", "hexagonal", 3.25, 5.207,
           [(0, (_T, 2 * _T, 0)), (1, (_T, 2 * _T, "u"))], [("u", 0.382)], ["Zn", "O"],
           [[("Zn", "Cd", "Be"), ("O", "S", "Se")], [("Al", "Ga", "In"), ("N",)]]),
        _p("fluorite", "Fm-3m", "cubic", 5.46, 0, [(0, (0, 0, 0)), (1, (0.25, 0.25, 0.25))],
           [], ["Ca", "F"], [[("Ca", "Sr", "Ba", "Cd", "Pb"), ("F", "Cl")],
                             [("Zr", "Hf", "Ce", "Th", "U"), ("O",)]]),
        _p("perovskite", "Pm-3m", "cubic", 3.905, 0,
           [(0, (0, 0, 0)), (1, (0.5, 0.5, 0.5)), (2, (0.5, 0.5, 0))], [],
           ["Sr", "Ti", "O"], [[("Ca", "Sr", "Ba", "Pb"), ("Ti", "Zr", "Sn", "Hf"), ("O",)],
                               [("K", "Rb", "Cs"), ("Mg", "Mn", "Fe", "Co", "Ni", "Zn"),
                                ("F", "Cl")]]),
        _p("spinel", "Fd-3m", "cubic", 8.08, 0,
           [(0, (0, 0, 0)), (1, (0.625, 0.625, 0.625)), (2, ("u", "u", "u"))], [("u", 0.387)],
           ["Mg", "Al", "O"], [[("Mg", "Zn", "Fe", "Co", "Ni", "Mn", "Cd"),
                                ("Al", "Ga", "Cr", "Fe", "V", "Mn", "Co"), ("O", "S")]]),
        _p("rutile", "P4_2/mnm", "tetragonal", 4.594, 2.959,
           [(0, (0, 0, 0)), (1, ("x", "x", 0))], [("x", 0.305)], ["Ti", "O"],
           [[("Ti", "Sn", "Ge", "Ru", "Mn", "Cr", "V", "Ir", "Os"), ("O",)],
            [("Mg", "Zn", "Fe", "Co", "Ni", "Mn"), ("F",)]]),
        _p("corundum", "R-3c", "hexagonal", 4.759, 12.99,
           [(0, (0, 0, "z")), (1, ("x", 0, 0.25))], [("z", 0.352), ("x", 0.306)],
           ["Al", "O"], [[("Al", "Cr", "Fe", "V", "Ti", "Ga", "Rh", "In"), ("O",)]]),
        _p("nickel_arsenide", "P6_3/mmc", "hexagonal", 3.619, 5.034,
           [(0, (0, 0, 0)), (1, (_T, 2 * _T, 0.25))], [], ["Ni", "As"],
           [[("Ni", "Co", "Fe", "Mn", "Cr", "Ti", "V"), ("As", "Sb", "S", "Se", "Te", "Bi")]]),
        _p("cadmium_iodide", "P-3m1", "hexagonal", 4.24, 6.84,
           [(0, (0, 0, 0)), (1, (_T, 2 * _T, "z"))], [("z", 0.25)], ["Cd", "I"],
           [[("Cd", "Mg", "Fe", "Co", "Ni", "Mn", "Ti", "Zr", "Sn"), ("I", "Br", "Cl", "S")]]),
        _p("pyrite", "Pa-3", "cubic", 5.417, 0, [(0, (0, 0, 0)), (1, ("u", "u", "u"))],
           [("u", 0.385)], ["Fe", "S"],
           [[("Fe", "Co", "Ni", "Mn", "Ru", "Os", "Pt"), ("S", "Se", "Te")]]),
        _p("calcite", "R-3c", "hexagonal", 4.99, 17.06,
           [(0, (0, 0, 0)), (1, (0, 0, 0.25)), (2, ("x", 0, 0.25))], [("x", 0.257)],
           ["Ca", "C", "O"], [[("Ca", "Mg", "Mn", "Fe", "Co", "Zn", "Cd"), ("C",), ("O",)],
                              [("Na", "Li", "K"), ("N",), ("O",)]]),
        _p("l12", "Pm-3m", "cubic", 3.75, 0, [(0, (0, 0, 0)), (1, (0, 0.5, 0.5))], [],
           ["Au", "Cu"], [[("Au", "Pt", "Pd", "Al", "Ti", "Ga", "Ge", "Sn"),
                           ("Cu", "Ni", "Co", "Fe", "Pt", "Pd")]]),
    )
}  # fmt: skip


def prototype_names() -> tuple[str, ...]:
    """Names of the table's prototypes, in table order."""
    return tuple(PROTOTYPES)


def _build(p: Prototype, species: tuple[str, ...], a: float, c: float, params: dict):
    from pymatgen.core import Lattice, Structure

    if p.lattice == "cubic":
        lattice = Lattice.cubic(a)
    elif p.lattice == "tetragonal":
        lattice = Lattice.tetragonal(a, c)
    else:
        lattice = Lattice.hexagonal(a, c)
    coords = [[params[v] if isinstance(v, str) else float(v) for v in xyz] for _, xyz in p.sites]
    # Structure.from_spacegroup, with the space group built once per process: pymatgen's
    # SpaceGroup() generates and deduplicates its operations anew each time (~1 s).
    group = _space_group(p.spacegroup)
    if not group.is_compatible(lattice):
        raise ValueError(f"prototype {p.name}: the lattice does not fit {p.spacegroup}")
    all_species, all_coords = [], []
    for (role, _), xyz in zip(p.sites, coords, strict=True):
        orbit = group.get_orbit(xyz)
        all_species += [species[role]] * len(orbit)
        all_coords += orbit
    return Structure(lattice, all_species, all_coords)


@cache
def _space_group(symbol: str):
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup(symbol)


@cache
def reference_structure(name: str):
    """The prototype with its reference species, lattice and coordinates."""
    p = PROTOTYPES[name]
    return _build(p, p.reference, p.a, p.c, dict(p.params))


@cache
def _nearest_roles(name: str) -> tuple[int, int, float]:
    """Roles of the closest pair of atoms in the reference structure and their distance."""
    s = reference_structure(name)
    p = PROTOTYPES[name]
    d = s.distance_matrix + np.eye(len(s)) * 1e9
    i, j = np.unravel_index(np.argmin(d), d.shape)
    role = {sp: r for r, sp in enumerate(p.reference)}
    return role[s[int(i)].specie.symbol], role[s[int(j)].specie.symbol], float(d[i, j])


def _radius(symbol: str) -> float:
    from pymatgen.core import Element

    return float(Element(symbol).atomic_radius)


def prototype_structure(name: str, rng: np.random.Generator, jitter: float = 1.0):
    """One random instance of prototype ``name``: a chemistry and species from its pools,
    the lattice scaled to the nearest pair's radius sum (±2 %), c/a ±3 % and the free
    coordinates ±0.01 (all times ``jitter``; 0 gives the scaled ideal structure)."""
    p = PROTOTYPES[name]
    pools = p.chemistries[int(rng.integers(len(p.chemistries)))]
    species = tuple(str(pool[int(rng.integers(len(pool)))]) for pool in pools)
    r1, r2, _d_ref = _nearest_roles(name)
    ref_sum = _radius(p.reference[r1]) + _radius(p.reference[r2])
    scale = (_radius(species[r1]) + _radius(species[r2])) / ref_sum
    scale *= 1.0 + jitter * rng.uniform(-0.02, 0.02)
    ca = 1.0 + jitter * rng.uniform(-0.03, 0.03)
    params = {k: v + jitter * rng.uniform(-0.01, 0.01) for k, v in p.params}
    return _build(p, species, p.a * scale, p.c * scale * ca, params)
