"""Structure source ``kind: prototypes``: 3d-metal compounds from prototype crystals.

For every compound of the catalogue (:mod:`mlxas.xanes.prototypes`: the reference
compounds of each prototype and their Shannon-scaled substitutions) the source yields the
ideal crystal and ``snapshots[class]`` thermal snapshots (:mod:`mlxas.xanes.variants`:
a random Green-Lagrange strain, the smallest diagonal supercell at least ``min_width``
wide, Gaussian displacements of rms ``sigma`` drawn from ``rattle``).  ``class`` is the
rarest geometry class among the compound's absorbing roles, so that rare geometries get
more spectra.

Each structure carries two per-atom arrays that travel through ``structures.extxyz``:

``absorbing``
    the multiplicity of an atom chosen as an absorbing site, 0 for the others
    (``sites.mode: marked`` reads it).  The ideal crystal marks the first atom of every
    absorbing role (a role is one Wyckoff orbit: its atoms are equivalent, and the mark
    is the orbit's size); a snapshot marks ``sites_per_role`` atoms per role, drawn with
    the snapshot's seed, each with multiplicity 1;
``oxidation_state``
    the bond-valence oxidation state of the atom's role in the ideal compound
    (pymatgen's ``BVAnalyzer`` on the ideal crystal).  Snapshots keep the compound's
    states; the ``geometry`` label set reads them instead of running ``BVAnalyzer`` on a
    rattled supercell.

Names and frames: every structure of one compound has the compound's name
(``<formula>_<prototype>``); the ideal crystal is frame 0 and snapshot ``k`` frame
``k + 1``.  ``dataset.split.group_by: name`` then keeps a compound's crystal and
snapshots in one split.  The origin names the prototype and whether the compound is a
reference compound or a substitution.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.structures.sources import register_source

__all__ = ["DEFAULT_SNAPSHOTS", "PrototypesSource", "compound_structures"]

#: Thermal snapshots per compound, by the rarest geometry class among its absorbing
#: roles: octahedral compounds are 79 of the 183, so their ideal crystals suffice.
DEFAULT_SNAPSHOTS = {
    "octahedral": 0,
    "tetrahedral": 2,
    "square_planar": 4,
    "square_pyramidal": 4,
    "trigonal_bipyramidal": 4,
    "linear": 4,
    "other": 4,
}


def _seed(*parts: Any) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def _rarest_class(compound) -> str:
    from mlxas.xanes.prototypes import prototype

    geometry = prototype(compound.prototype)["geometry"]
    classes = [geometry[r] for r in compound.absorbers()]
    return max(classes, key=lambda c: (c != "octahedral", c != "tetrahedral", c))


@register_source
@dataclass(frozen=True)
class PrototypesSource:
    """A ``kind: prototypes`` source (see the module docstring).

    ``prototypes``: names from ``prototypes.yaml`` (None: all); ``compounds``: compound
    names ``<formula>_<prototype>`` of the catalogue (None: all of those prototypes);
    ``absorbers``: the 3d
    metals whose sites are marked (None: Ti to Zn); ``snapshots``: thermal snapshots per
    compound by geometry class; ``sites_per_role``: absorbing atoms drawn per role in a
    snapshot; ``seed``: seed of every draw; ``strain``: largest |Voigt component| of the
    random strain; ``rattle``: range (Å) of the rms displacement per axis; ``min_width``:
    smallest perpendicular width (Å) of a snapshot's supercell (2 × the FEFF FMS radius
    keeps the atoms within the FMS sphere independent of each other).
    """

    kind = "prototypes"
    name: str
    prototypes: tuple[str, ...] | None = None
    compounds: tuple[str, ...] | None = None
    absorbers: tuple[str, ...] | None = None
    snapshots: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SNAPSHOTS))
    sites_per_role: int = 1
    seed: int = 0
    strain: float = 0.02
    rattle: tuple[float, float] = (0.03, 0.08)
    min_width: float = 8.0

    def __post_init__(self) -> None:
        from mlxas.errors import ConfigError
        from mlxas.xanes.labels import GEOMETRY_CLASSES
        from mlxas.xanes.prototypes import TRANSITION_METALS, prototype

        where = f"structures.{self.name}"
        for p in self.prototypes or ():
            try:
                prototype(p)
            except ValueError as err:
                raise ConfigError(f"{where}.prototypes: {err}") from None
        if self.compounds:
            from mlxas.xanes.prototypes import catalogue

            known = {c.name for c in catalogue(self._prototypes()).compounds}
            missing = sorted(set(self.compounds) - known)
            if missing:
                raise ConfigError(
                    f"{where}.compounds: {missing} are not compounds of the catalogue"
                    + (f" for prototypes {list(self.prototypes)}" if self.prototypes else "")
                    + " (names are <formula>_<prototype>, e.g. NiO_rock_salt; docs/xanes.md)"
                )
        bad = sorted(set(self.absorbers or ()) - set(TRANSITION_METALS))
        if bad:
            raise ConfigError(
                f"{where}.absorbers: {bad} are not among the 3d metals {list(TRANSITION_METALS)}"
            )
        unknown = sorted(set(self.snapshots) - set(GEOMETRY_CLASSES))
        if unknown:
            raise ConfigError(
                f"{where}.snapshots: unknown classes {unknown} (known: {list(GEOMETRY_CLASSES)})"
            )
        if self.sites_per_role < 1 or any(int(n) < 0 for n in self.snapshots.values()):
            raise ConfigError(f"{where}: sites_per_role must be >= 1 and snapshots >= 0")

    def _prototypes(self) -> tuple[str, ...] | None:
        return tuple(self.prototypes) if self.prototypes else None

    def elements(self) -> tuple[str, ...]:
        from mlxas.xanes.prototypes import TRANSITION_METALS

        return tuple(self.absorbers or TRANSITION_METALS)

    def variants(self):
        from mlxas.xanes.variants import VariantSettings

        return VariantSettings(strain=self.strain, rattle=tuple(self.rattle),
                               min_width=self.min_width)  # fmt: skip

    def generate(self, work_dir: Path | None = None) -> Iterator:
        from tqdm import tqdm

        from mlxas.xanes.prototypes import catalogue

        wanted = set(self.elements())
        cat = catalogue(self._prototypes())
        chosen = [c for c in cat.compounds if not self.compounds or c.name in self.compounds]
        for compound in tqdm(chosen, desc=f"{self.name}: compounds", mininterval=3):
            roles = {r: el for r, el in compound.absorbers().items() if el in wanted}
            if not roles:
                continue
            origin = f"prototype {compound.prototype} ({compound.origin})"
            for frame, atoms in enumerate(compound_structures(compound, roles, self)):
                yield compound.name, frame, origin, atoms


def compound_structures(compound, roles: dict[str, str], source: PrototypesSource):
    """ASE structures of one compound (ideal crystal first, then its snapshots), with the
    ``absorbing`` and ``oxidation_state`` arrays; ``roles``: the absorbing roles."""
    from ase import Atoms

    from mlxas.xanes.prototypes import build_structure, role_valences
    from mlxas.xanes.variants import snapshot

    base = build_structure(compound)
    valence = role_valences(compound)
    n_snap = int(source.snapshots.get(_rarest_class(compound), 0))
    seeds = [None] + [_seed(compound.name, k, source.seed) for k in range(n_snap)]
    for seed in seeds:
        s = snapshot(base, source.variants(), seed).structure
        site_roles = s.site_properties["role"]
        marks = np.zeros(len(s), dtype=np.int64)
        # The draw of the snapshot's sites follows its own seed (+1: not the strain's draw).
        rng = np.random.default_rng(None if seed is None else seed + 1)
        for role in compound.absorbers():  # every role draws, so the sequence is stable
            idx = [i for i, r in enumerate(site_roles) if r == role]
            if seed is None:
                chosen, mult = [idx[0]], len(idx)
            else:
                k = min(source.sites_per_role, len(idx))
                chosen, mult = rng.choice(idx, k, replace=False), 1
            if role in roles:
                marks[np.asarray(chosen, dtype=np.int64)] = mult
        atoms = Atoms(
            [site.specie.symbol for site in s],
            positions=s.cart_coords,
            cell=s.lattice.matrix,
            pbc=True,
        )
        atoms.arrays["absorbing"] = marks
        atoms.arrays["oxidation_state"] = np.array([valence[r] for r in site_roles], float)
        yield atoms
