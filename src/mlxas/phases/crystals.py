"""Random organic-like molecular crystals (P-1, P2_1/c) from pyxtal, reproducible by seed.

Each crystal packs 1 to ``max_molecules`` small organic molecules (C, N, O, H with
some S and Cl) in the asymmetric unit of a centrosymmetric space group with pyxtal's
random molecular-crystal generator.  Molecule geometries are real ones (ASE's G2 set and
pyxtal's molecule database), so bond lengths and angles are chemical; pyxtal keeps the
molecules apart by its molecular tolerance matrix.  Cells, orientations, positions and
the number of molecules per cell (Z) are random.

A crystal is a pure function of ``(settings, index)``: the random stream of crystal
``index`` is ``numpy.random.default_rng([seed, index])``, so any crystal of a large run
can be made again alone (on another node, in another chunk) and every crystal carries
its provenance (generator, seed, index, attempt, molecules) in ``atoms.info``.

Crystals whose longest cell edge exceeds ``max_edge``, and the rare crystals whose atoms
do not have the space group's symmetry within 1e-3 Å, are drawn again (the attempt
number is in the provenance): the reflection list is an index box (see
:mod:`mlxas.phases.reflections`), and ``index_max >= max_edge / d_min`` keeps every
reflection to ``d_min`` inside it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from ase import Atoms

from mlxas.provenance import structure_hash

__all__ = [
    "DEFAULT_MOLECULES",
    "SPACE_GROUPS",
    "CrystalError",
    "CrystalSettings",
    "has_symmetry",
    "random_crystal",
    "random_crystals",
]

#: Space groups mlxas generates: number -> (symbol, multiplicity of the general
#: position, cctbx symbol)
SPACE_GROUPS: dict[int, tuple[str, int, str]] = {
    2: ("P-1", 2, "P -1"),
    14: ("P2_1/c", 4, "P 1 21/c 1"),
}

#: Closed-shell organic molecules of ASE's G2 set with at least 3 non-H atoms and only
#: C, N, O, H, S, Cl; then molecules of pyxtal's database (prefix ``pyxtal:``).
DEFAULT_MOLECULES: tuple[str, ...] = (
    "CH3CHO",
    "OCHCHO",
    "CH3CH2OCH3",
    "HCOOH",
    "HCCl3",
    "C4H4NH",
    "CH3SCH3",
    "C2H6CHOH",
    "CH2NHCH2",
    "isobutene",
    "bicyclobutane",
    "methylenecyclopropane",
    "CH3CH2OH",
    "CH3CN",
    "cyclobutene",
    "CH3ONO",
    "CO2",
    "trans-butane",
    "H2CCHCl",
    "CH2OCH2",
    "C6H6",
    "CH3CONH2",
    "cyclobutane",
    "H2CCHCN",
    "butadiene",
    "CH3COOH",
    "CS2",
    "C4H4S",
    "CH3OCH3",
    "C5H5N",
    "CH3CH2SH",
    "CH3NO2",
    "C4H4O",
    "C3H7Cl",
    "isobutane",
    "CCl4",
    "NCCN",
    "2-butyne",
    "H2CCl2",
    "C2H6NH",
    "OCS",
    "C3H8",
    "CH3CH2Cl",
    "CH3COCl",
    "C3H9N",
    "HCOOCH3",
    "C2H6SO",
    "C5H8",
    "CH2SCH2",
    "C2Cl4",
    "CH3COCH3",
    "H2CCO",
    "CH3CH2NH2",
    "pyxtal:Glycine",
    "pyxtal:naphthalene",
    "pyxtal:coumarin",
    "pyxtal:resorcinol",
    "pyxtal:benzamide",
    "pyxtal:aspirin",
    "pyxtal:lindane",
    "pyxtal:Glucose",
    "pyxtal:PAHYON01",
    "pyxtal:AXOSOW01",
    "pyxtal:HAHCOI",
    "pyxtal:BIPHEN",
)


class CrystalError(ValueError):
    """Settings that cannot make crystals, or a crystal that could not be made."""


@dataclass(frozen=True)
class CrystalSettings:
    """What random crystals to make.  Lengths in Å."""

    space_group: int = 2  #: 2 (P-1) or 14 (P2_1/c), standard settings (inversion at 0)
    seed: int = 0
    molecules: tuple[str, ...] = DEFAULT_MOLECULES
    #: distinct molecules in the asymmetric unit, drawn uniformly in [1, max_molecules]
    max_molecules: int = 2
    #: the asymmetric unit's non-H atoms at most (molecules drawn again beyond it)
    max_heavy_atoms: int = 20
    max_edge: float = 11.0  #: longest cell edge; longer cells are drawn again
    volume_factor: float = 1.0  #: pyxtal's ``factor`` on its estimated cell volume
    max_attempts: int = 30
    name_prefix: str = field(default="")

    def __post_init__(self) -> None:
        if self.space_group not in SPACE_GROUPS:
            raise CrystalError(
                f"space_group {self.space_group} is not one of {sorted(SPACE_GROUPS)}"
            )
        if self.max_molecules < 1 or self.max_attempts < 1:
            raise CrystalError("max_molecules and max_attempts must be >= 1")
        unknown = [m for m in self.molecules if not _known_molecule(m)]
        if unknown:
            raise CrystalError(f"unknown molecules: {', '.join(unknown)}")


@cache
def _molecule_names() -> frozenset[str]:
    from ase.collections import g2
    from pyxtal.database.collection import Collection

    return frozenset(g2.names) | {f"pyxtal:{n}" for n in Collection("molecules")}


def _known_molecule(name: str) -> bool:
    return name in _molecule_names()


@cache
def _molecule(name: str):
    """A pyxtal molecule, built once per process (it computes the point group); use a
    copy with its own random state (:func:`_fresh_molecule`) to place it."""
    from pymatgen.core import Molecule
    from pyxtal.molecule import pyxtal_molecule

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.startswith("pyxtal:"):
            return pyxtal_molecule(name.removeprefix("pyxtal:"))
        from ase.build import molecule

        atoms = molecule(name)
        return pyxtal_molecule(Molecule(atoms.get_chemical_symbols(), atoms.positions))


def _heavy(name: str) -> int:
    return sum(str(s) != "H" for s in _molecule(name).mol.species)


def _draw_molecules(settings: CrystalSettings, rng: np.random.Generator) -> list[str]:
    """1..max_molecules molecules (repeats allowed: Z' = 2) within max_heavy_atoms."""
    for _ in range(100):
        n = int(rng.integers(1, settings.max_molecules + 1))
        names = [settings.molecules[i] for i in rng.integers(0, len(settings.molecules), n)]
        if sum(_heavy(m) for m in names) <= settings.max_heavy_atoms:
            return names
    raise CrystalError(
        f"no molecule set within max_heavy_atoms={settings.max_heavy_atoms} in 100 draws"
    )


@cache
def _tolerances():
    from pyxtal.tolerance import Tol_matrix

    return Tol_matrix(prototype="molecular")


def _seeded_molecule(name: str, rng: np.random.Generator):
    """The cached molecule with its random stream reset from ``rng``: pyxtal draws
    orientations from the molecule's ``random_state``, so without the reset a crystal
    would depend on the crystals made before it in the process."""
    mol = _molecule(name)
    mol.random_state = np.random.default_rng(int(rng.integers(2**63)))
    return mol


def _pyxtal_crystal(settings: CrystalSettings, names: list[str], rng: np.random.Generator):
    from pyxtal import pyxtal

    mult = SPACE_GROUPS[settings.space_group][1]
    unique = sorted(set(names))
    counts = [mult * names.count(m) for m in unique]
    molecules = [_seeded_molecule(m, rng) for m in unique]
    crystal = pyxtal(molecular=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crystal.from_random(
            3,
            settings.space_group,
            molecules,
            counts,
            factor=settings.volume_factor,
            random_state=int(rng.integers(2**63)),
            tm=_tolerances(),
        )
    return crystal if crystal.valid else None


def has_symmetry(atoms: Atoms, space_group: str, tolerance: float = 1e-3) -> bool:
    """Whether every operation of ``space_group`` (cctbx symbol, at the cell's origin)
    maps the atoms onto atoms of the same element within ``tolerance`` Å."""
    from cctbx import sgtbx

    frac = atoms.get_scaled_positions()
    cell = atoms.cell[:]
    numbers = atoms.numbers
    for op in sgtbx.space_group_info(space_group).group().all_ops():
        rot = np.array(op.r().as_double()).reshape(3, 3)
        img = frac @ rot.T + np.array(op.t().as_double())
        d = img[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ cell, axis=2)
        dist[numbers[:, None] != numbers[None, :]] = np.inf
        if np.any(dist.min(axis=1) > tolerance):
            return False
    return True


def random_crystal(settings: CrystalSettings, index: int) -> Atoms:
    """Crystal number ``index`` of ``settings`` as ASE atoms (the full unit cell).

    ``atoms.info`` holds ``structure_id``, ``name``, ``origin`` (the provenance line),
    ``space_group`` (symbol), ``z`` (molecules per cell), ``molecules`` and ``attempt``.
    Raises :class:`CrystalError` when no crystal within ``max_edge`` came out of
    ``max_attempts`` draws.
    """
    import pyxtal

    rng = np.random.default_rng([settings.seed, index])
    symbol = SPACE_GROUPS[settings.space_group][0]
    for attempt in range(settings.max_attempts):
        names = _draw_molecules(settings, rng)
        crystal = _pyxtal_crystal(settings, names, rng)
        if crystal is None:
            continue
        atoms = crystal.to_ase()
        if max(atoms.cell.lengths()) > settings.max_edge:
            continue
        atoms.wrap()
        if not has_symmetry(atoms, SPACE_GROUPS[settings.space_group][2]):
            # pyxtal puts a molecule on a special position by symmetrising it; a molecule
            # whose symmetry is only approximate (biphenyl's H) breaks the group's.
            continue
        sid = structure_hash(
            atoms.get_chemical_symbols(), atoms.positions, atoms.cell[:], atoms.pbc
        )
        name = f"{settings.name_prefix}{symbol.replace('/', '')}_{settings.seed}_{index:07d}"
        atoms.info.update(
            structure_id=sid,
            name=name,
            frame=-1,
            space_group=symbol,
            z=len(names) * SPACE_GROUPS[settings.space_group][1],
            molecules=" ".join(names),
            attempt=attempt,
            origin=(
                f"pyxtal {pyxtal.__version__} molecular crystal {symbol} seed={settings.seed}"
                f" index={index} attempt={attempt} molecules={','.join(names)}"
            ),
        )
        return atoms
    raise CrystalError(
        f"crystal {index} (seed {settings.seed}): no {symbol} crystal with edges <= "
        f"{settings.max_edge} Å in {settings.max_attempts} attempts"
    )


def random_crystals(
    settings: CrystalSettings, n: int, start: int = 0
) -> Iterator[tuple[int, Atoms | CrystalError]]:
    """Crystals ``start .. start + n - 1``; a crystal that could not be made is yielded
    as its :class:`CrystalError` (the caller records it as a rejection)."""
    for index in range(start, start + n):
        try:
            yield index, random_crystal(settings, index)
        except CrystalError as exc:
            yield index, exc
