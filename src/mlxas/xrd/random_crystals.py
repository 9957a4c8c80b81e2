"""Random crystals over all 230 space groups with pyxtal, reproducible from a seed.

Compositions are chemically sensible: charge-balanced binary and ternary ionic compounds
from common oxidation states, elemental metals and simple intermetallics.  The number of
formula units is chosen among those pyxtal finds compatible with the group's Wyckoff
positions; pyxtal places the atoms with its distance tolerances, and a structure whose
closest pair is nearer than ``min_distance_factor`` times the sum of the two covalent
radii (ASE's table) is refused.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["RandomCrystalSettings", "random_composition", "random_crystal"]

#: Common positive oxidation states of cations.
CATIONS: dict[int, tuple[str, ...]] = {
    1: ("Li", "Na", "K", "Rb", "Cs", "Ag", "Cu", "Tl"),
    2: ("Be", "Mg", "Ca", "Sr", "Ba", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Cd", "Pb", "Sn", "Hg"),
    3: ("B", "Al", "Ga", "In", "Sc", "Y", "La", "Cr", "Fe", "V", "Ti", "Bi", "Sb", "Co", "Rh"),
    4: ("Si", "Ge", "Sn", "Ti", "Zr", "Hf", "Ce", "Mn", "V", "Mo", "W", "Ru", "Ir", "Pt"),
    5: ("P", "V", "Nb", "Ta", "As", "Sb"),
    6: ("Mo", "W", "Cr"),
}
ANIONS: dict[str, int] = {
    "O": 2, "S": 2, "Se": 2, "Te": 2, "F": 1, "Cl": 1, "Br": 1, "I": 1, "N": 3,
}  # fmt: skip
METALS = (
    "Li", "Na", "K", "Be", "Mg", "Ca", "Sr", "Ba", "Al", "Ga", "In", "Sn", "Pb", "Bi", "Sc",
    "Y", "Ti", "Zr", "Hf", "V", "Nb", "Ta", "Cr", "Mo", "W", "Mn", "Re", "Fe", "Ru", "Os",
    "Co", "Rh", "Ir", "Ni", "Pd", "Pt", "Cu", "Ag", "Au", "Zn", "Cd",
)  # fmt: skip
#: Share of each kind of composition.
KINDS = {"binary_ionic": 0.4, "ternary_ionic": 0.35, "intermetallic": 0.15, "element": 0.1}


@dataclass(frozen=True)
class RandomCrystalSettings:
    max_atoms: int = 48  #: atoms in the conventional cell
    #: atoms ≤ max_asymmetric × the general position's multiplicity: bounds the atoms
    #: pyxtal places freely (placing 40 atoms in P1 takes it ~40 s)
    max_asymmetric: int = 8
    min_distance_factor: float = 0.7  #: closest pair ≥ factor × (r_cov,i + r_cov,j)
    attempts: int = 20  #: compositions tried before a group is given up for this seed
    volume_factor: float = 1.1  #: pyxtal's volume factor over the atoms' own volume
    #: CPU seconds one pyxtal placement may take before the composition is given up;
    #: None (default): no limit, so a seed always gives the same crystal.  With a limit
    #: the result depends on the machine's speed.  Applied only in a process's main
    #: thread (it uses a profiling timer signal).
    time_limit: float | None = None


class _TimeUp(BaseException):
    """Raised by the CPU timer; a BaseException so that pyxtal's handlers let it pass."""


@contextlib.contextmanager
def _cpu_limit(seconds: float | None):
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise _TimeUp

    old = signal.signal(signal.SIGPROF, _raise)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def random_composition(rng: np.random.Generator) -> dict[str, int]:
    """Species and counts of one formula unit."""
    kind = rng.choice(list(KINDS), p=list(KINDS.values()))
    if kind == "element":
        return {str(rng.choice(METALS)): 1}
    if kind == "intermetallic":
        a, b = rng.choice(METALS, size=2, replace=False)
        n = [(1, 1), (1, 2), (1, 3), (2, 3)][int(rng.integers(4))]
        return {str(a): n[0], str(b): n[1]}
    anion = str(rng.choice(list(ANIONS)))
    q = ANIONS[anion]
    if kind == "binary_ionic":
        ox = int(rng.choice(list(CATIONS)))
        cat = str(rng.choice(CATIONS[ox]))
        g = math.gcd(ox, q)
        return {cat: q // g, anion: ox // g} if cat != anion else {cat: 1}
    for _ in range(20):
        ox1, ox2 = (int(x) for x in rng.choice(list(CATIONS), size=2))
        c1, c2 = str(rng.choice(CATIONS[ox1])), str(rng.choice(CATIONS[ox2]))
        n1, n2 = (int(x) for x in rng.integers(1, 4, size=2))
        charge = n1 * ox1 + n2 * ox2
        if c1 != c2 and anion not in (c1, c2) and charge % q == 0:
            m = charge // q
            g = math.gcd(math.gcd(n1, n2), m)
            return {c1: n1 // g, c2: n2 // g, anion: m // g}
    return random_composition(rng)


def _closest_pair_ok(structure, factor: float) -> bool:
    from ase.data import covalent_radii

    if len(structure) < 2:
        # One atom: its distance to its own images is the shortest lattice vector.
        z = structure[0].specie.Z
        return min(structure.lattice.abc) >= factor * 2 * covalent_radii[z]
    d = structure.distance_matrix
    z = np.array([site.specie.Z for site in structure])
    r = covalent_radii[z]
    limit = factor * (r[:, None] + r[None, :])
    np.fill_diagonal(d, np.inf)
    return bool(np.all(d >= limit)) and min(structure.lattice.abc) >= factor * 2 * r.min()


def random_crystal(space_group: int, seed: int, settings: RandomCrystalSettings | None = None):
    """A pymatgen structure in ``space_group`` from ``seed`` (same seed, same crystal), or
    None when no composition could be placed within ``settings.attempts``."""
    from pyxtal import pyxtal
    from pyxtal.symmetry import Group
    from pyxtal.tolerance import Tol_matrix

    s = settings or RandomCrystalSettings()
    # pyxtal's "atomic" tolerances are factor/2 times the covalent radius sum.
    tm = Tol_matrix(prototype="atomic", factor=2.0 * s.min_distance_factor)
    rng = np.random.default_rng([seed, space_group])
    group = Group(space_group)
    limit = min(s.max_atoms, s.max_asymmetric * group[0].multiplicity)
    for _ in range(s.attempts):
        comp = random_composition(rng)
        species, per_fu = list(comp), np.array(list(comp.values()))
        options = [
            z
            for z in range(1, limit // int(per_fu.sum()) + 1)
            if group.check_compatible((z * per_fu).tolist())[0]
        ]
        if not options:
            continue
        # Mostly the smallest cells: they are the common case and the cheapest.
        z = options[0] if rng.uniform() < 0.6 or len(options) == 1 else int(rng.choice(options[1:]))
        crystal = pyxtal()
        state = int(rng.integers(2**31))
        try:
            with _cpu_limit(s.time_limit):
                crystal.from_random(
                    3, space_group, species, (z * per_fu).tolist(),
                    factor=s.volume_factor, random_state=state, tm=tm,
                )  # fmt: skip
        except (Exception, _TimeUp):
            continue
        if not crystal.valid:
            continue
        structure = crystal.to_pymatgen()
        if _closest_pair_ok(structure, s.min_distance_factor):
            return structure
    return None
