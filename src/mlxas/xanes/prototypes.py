"""Prototype crystals of 3d transition-metal oxides, sulfides and fluorides.

Every structure is built by pymatgen's ``Structure.from_spacegroup`` from one Wyckoff
representative per *role* (``M``, ``A``, ``B``, ``X``, ...); the table of prototypes,
reference compounds and substitutions is ``prototypes.yaml`` beside this module.  Each
site of a built structure carries its role in the site property ``role``, so the
absorbing sites of a role can be found after supercells, strain and rattling.

Units: lattice lengths in Å, angles in degrees, coordinates fractional.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
import yaml

__all__ = [
    "TRANSITION_METALS",
    "Compound",
    "PrototypeError",
    "build_structure",
    "catalogue",
    "compound_valences",
    "formula",
    "prototype",
    "prototype_names",
    "role_valences",
    "substituted",
]

#: The absorbers of the XANES geometry dataset: the 3d metals Ti to Zn.
TRANSITION_METALS = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")
ANIONS = ("O", "S", "F")


class PrototypeError(ValueError):
    """A prototype or compound that cannot be built as given; the message says which."""


@dataclass(frozen=True)
class Compound:
    """One compound of a prototype: an element per role and its lattice.

    ``coords`` overrides Wyckoff representatives of the prototype; ``bond`` =
    ``(anion role, cation role, length Å)`` moves the anion representative along the
    bond to its nearest cation of that role until the bond has that length.
    ``origin`` is ``reference`` (a compound of the table) or ``substituted``.
    """

    prototype: str
    species: tuple[tuple[str, str], ...]
    lattice: tuple[float, ...]
    coords: tuple[tuple[str, tuple[float, float, float]], ...] = ()
    bond: tuple[str, str, float] | None = None
    hypothetical: bool = False
    origin: str = "reference"
    parent: str = ""  #: name of the reference compound a substitution came from

    @property
    def elements(self) -> dict[str, str]:
        return dict(self.species)

    @property
    def name(self) -> str:
        """``<reduced formula>_<prototype>``, unique within the catalogue."""
        return f"{formula(build_structure(self))}_{self.prototype}"

    def absorbers(self) -> dict[str, str]:
        """Roles of this compound that hold a 3d metal, with the metal."""
        geometry = prototype(self.prototype)["geometry"]
        return {r: el for r, el in self.species if r in geometry and el in TRANSITION_METALS}


#: Read by :func:`_table`; hashed into the code version of every stage that imports this.
__data_files__ = ("prototypes.yaml",)


@cache
def _table() -> dict[str, Any]:
    path = files("mlxas.xanes") / "prototypes.yaml"
    return yaml.safe_load(path.read_text())


def prototype_names() -> list[str]:
    """Names of the prototypes in the table, in table order."""
    return list(_table())


def prototype(name: str) -> dict[str, Any]:
    """The table entry of prototype ``name`` (do not modify)."""
    try:
        return _table()[name]
    except KeyError:
        raise PrototypeError(
            f"unknown prototype {name!r} (have: {', '.join(prototype_names())})"
        ) from None


def _lattice(kind: str, params: tuple[float, ...]):
    from pymatgen.core import Lattice

    makers = {
        "cubic": (1, Lattice.cubic),
        "tetragonal": (2, Lattice.tetragonal),
        "hexagonal": (2, Lattice.hexagonal),
        "orthorhombic": (3, Lattice.orthorhombic),
        "monoclinic": (4, Lattice.monoclinic),
    }
    if kind not in makers:
        raise PrototypeError(f"unknown lattice kind {kind!r} (have: {', '.join(makers)})")
    n, make = makers[kind]
    if len(params) != n:
        raise PrototypeError(f"a {kind} lattice takes {n} parameter(s), got {list(params)}")
    return make(*params)


def _compound_from_entry(proto: str, entry: dict[str, Any]) -> Compound:
    entry_proto = prototype(proto)
    roles = list(entry_proto["sites"])
    if entry_proto.get("order_half"):
        roles.append(entry_proto["order_half"]["as"])
    missing = [r for r in roles if r not in entry]
    if missing:
        raise PrototypeError(f"prototypes.yaml: {proto} compound {entry} lacks roles {missing}")
    coords = entry.get("coords", {})
    return Compound(
        prototype=proto,
        species=tuple((r, entry[r]) for r in roles),
        lattice=tuple(float(v) for v in entry["lattice"]),
        coords=tuple((r, tuple(float(c) for c in v)) for r, v in coords.items()),
        bond=(*entry["bond"][:2], float(entry["bond"][2])) if "bond" in entry else None,
        hypothetical=bool(entry.get("hypothetical", False)),
    )


@cache
def _space_group(symbol: str):
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup(symbol)


@cache
def _orbit(symbol: str, point: tuple[float, float, float]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(c) for c in _space_group(symbol).get_orbit(np.asarray(point), tol=1e-5))


def _from_spacegroup(proto: dict[str, Any], compound: Compound, coords: dict[str, Any]):
    """What ``Structure.from_spacegroup`` builds, with the space group and orbits cached:
    pymatgen spends ~0.5 s constructing a ``SpaceGroup`` on every call."""
    from pymatgen.core import Structure

    lattice = _lattice(proto["lattice"], compound.lattice)
    spg = _space_group(proto["spacegroup"])
    if not spg.is_compatible(lattice):
        raise PrototypeError(
            f"{compound.prototype}: lattice {compound.lattice} does not fit {proto['spacegroup']}"
        )
    elements = compound.elements
    species, frac, roles = [], [], []
    for role in proto["sites"]:
        point = tuple(round(float(c), 8) for c in coords[role])
        orbit = _orbit(proto["spacegroup"], point)
        species += [elements[role]] * len(orbit)
        frac += list(orbit)
        roles += [role] * len(orbit)
    return Structure(lattice, species, frac, site_properties={"role": roles})


def _set_bond(proto, compound: Compound, coords: dict[str, Any]) -> dict[str, Any]:
    """Move the anion representative along its bond to the nearest cation of a role."""
    anion, cation, length = compound.bond
    s = _from_spacegroup(proto, compound, coords)
    lat = s.lattice
    x = lat.get_cartesian_coords(coords[anion])
    cations = [site for site in s if site.properties["role"] == cation]
    best = None
    for site in cations:
        d, image = site.distance_and_image_from_frac_coords(coords[anion])
        if best is None or d < best[0]:
            best = (d, lat.get_cartesian_coords(site.frac_coords + np.asarray(image)))
    if best is None:
        raise PrototypeError(f"{compound.prototype}: no site of role {cation} for the bond")
    d, c = best
    new = c + (x - c) * (length / d)
    return {**coords, anion: list(lat.get_fractional_coords(new))}


def _order_half(structure, role: str, new_role: str, element: str):
    """Primitive cell with the second half of the ``role`` sites given ``element``."""
    prim = structure.get_primitive_structure(use_site_props=True)
    sites = [i for i, site in enumerate(prim) if site.properties["role"] == role]
    if len(sites) % 2:
        raise PrototypeError(f"role {role}: {len(sites)} sites cannot be split in half")
    for i in sites[len(sites) // 2 :]:
        prim.replace(i, element, properties={"role": new_role})
    return prim


@cache
def build_structure(compound: Compound):
    """The pymatgen ``Structure`` of ``compound`` (cached: copy before changing it)."""
    proto = prototype(compound.prototype)
    coords = {r: list(v) for r, v in proto["sites"].items()}
    for r, v in compound.coords:
        if r not in coords:
            raise PrototypeError(f"{compound.prototype}: coords given for unknown role {r}")
        coords[r] = list(v)
    if compound.bond is not None:
        coords = _set_bond(proto, compound, coords)
    s = _from_spacegroup(proto, compound, coords)
    order = proto.get("order_half")
    if order:
        s = _order_half(s, order["role"], order["as"], compound.elements[order["as"]])
    return s


@cache
def role_valences(compound: Compound) -> dict[str, float]:
    """Bond-valence oxidation state of each role (pymatgen ``BVAnalyzer``).

    Computed on the primitive cell of the ideal structure: a role is one Wyckoff orbit
    (or one half of an ordered orbit), so all its sites share one valence.
    """
    from pymatgen.analysis.bond_valence import BVAnalyzer

    prim = build_structure(compound).get_primitive_structure(use_site_props=True)
    try:
        val = BVAnalyzer().get_valences(prim)
    except ValueError as err:
        raise PrototypeError(f"{compound.name}: no bond-valence oxidation states ({err})") from err
    out: dict[str, float] = {}
    for site, v in zip(prim, val, strict=True):
        role = site.properties["role"]
        if out.setdefault(role, float(v)) != float(v):
            raise PrototypeError(f"{compound.name}: sites of role {role} differ in valence")
    return out


def compound_valences(compound: Compound) -> tuple[float, ...]:
    """Bond-valence oxidation state of every site of :func:`build_structure`."""
    roles = role_valences(compound)
    return tuple(roles[site.properties["role"]] for site in build_structure(compound))


def formula(structure) -> str:
    """Reduced formula, elements by electronegativity (``ZnCr2O4``, ``SrTiO3``)."""
    comp = structure.composition.reduced_composition
    return "".join(
        part.removesuffix("1") if part[-2].isalpha() else part for part in comp.formula.split()
    )


def _radius(element: str, valence: float) -> float:
    from pymatgen.core import Species

    ox = round(valence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = Species(element, ox).ionic_radius
    if r is None:
        raise PrototypeError(f"no Shannon radius for {element}{ox:+d}")
    return float(r)


def substituted(compound: Compound, role: str, element: str) -> Compound:
    """``compound`` with ``element`` on ``role``, the lattice scaled from Shannon radii.

    The new element takes the role's bond-valence oxidation state in ``compound``.  The
    role's cation-anion distance changes by ``(r_new + r_X) / (r_old + r_X)``; the lattice
    is scaled by that ratio to the power of the role's share of the cation sites (all of
    it for a binary, 2/3 for the B site of a spinel), a Vegard-like rule.
    """
    old = compound.elements[role]
    s = build_structure(compound)
    val = compound_valences(compound)
    anion_val = [(site.specie.symbol, v) for site, v in zip(s, val, strict=True) if v < 0]
    if not anion_val:
        raise PrototypeError(f"{compound.name}: no anion to scale the lattice by")
    r_x = _radius(*anion_val[0])
    v = role_valences(compound)[role]
    ratio = (_radius(element, v) + r_x) / (_radius(old, v) + r_x)
    n_role = sum(site.properties["role"] == role for site in s)
    n_cat = sum(vv > 0 for vv in val)
    scale = ratio ** (n_role / n_cat)
    lattice = tuple(
        p * scale if i < _n_lengths(prototype(compound.prototype)["lattice"]) else p
        for i, p in enumerate(compound.lattice)
    )
    species = tuple((r, element if r == role else el) for r, el in compound.species)
    bond = compound.bond
    if bond is not None and bond[1] == role:
        bond = (bond[0], bond[1], bond[2] * ratio)
    return replace(
        compound,
        species=species,
        lattice=lattice,
        bond=bond,
        hypothetical=True,
        origin="substituted",
        parent=compound.name,
    )


def _n_lengths(kind: str) -> int:
    return {"cubic": 1, "tetragonal": 2, "hexagonal": 2, "orthorhombic": 3, "monoclinic": 3}[kind]


@dataclass
class Catalogue:
    """All compounds of the table, and the substitutions that could not be made."""

    compounds: list[Compound] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  #: (what, reason)


@cache
def catalogue(prototypes: tuple[str, ...] | None = None) -> Catalogue:
    """Reference compounds and their substitutions, in table order.

    A substitution is skipped (and listed in ``skipped`` with the reason) when the new
    element has no Shannon radius in the role's oxidation state, or when the substituted
    compound has no bond-valence oxidation states: its labels could not be computed.
    """
    out = Catalogue()
    seen: set[str] = set()
    for name in prototypes or tuple(prototype_names()):
        entry = prototype(name)
        refs = [_compound_from_entry(name, c) for c in entry["compounds"]]
        out.compounds.extend(refs)
        seen.update(c.name for c in refs)
        for role, elements in (entry.get("substitute") or {}).items():
            for el in elements:
                what = f"{refs[0].name} with {el} on {role}"
                try:
                    c = substituted(refs[0], role, el)
                    compound_valences(c)
                except PrototypeError as err:
                    out.skipped.append((what, str(err)))
                    continue
                if c.name in seen:
                    out.skipped.append((what, f"{c.name} is already a compound"))
                    continue
                seen.add(c.name)
                out.compounds.append(c)
    return out


def lattice_scale_check(compound: Compound) -> float:
    """Shortest cation-anion distance (Å) of the ideal structure (for sanity checks)."""
    s = build_structure(compound)
    val = compound_valences(compound)
    best = math.inf
    for i, site in enumerate(s):
        if val[i] <= 0:
            continue
        for nb in s.get_neighbors(site, 3.5):
            if val[nb.index] < 0:
                best = min(best, nb.nn_distance)
    return best
