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
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RandomCrystalSettings",
    "place_random_crystal",
    "random_composition",
    "random_crystal",
]

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
    """Bounds of one random crystal.  The work per structure is capped three ways: atoms
    per cell (``max_atoms``, ``max_formula_atoms``), placements tried (``attempts``) and CPU
    seconds (``attempt_seconds`` per placement, ``structure_seconds`` in all).  A crystal
    not placed within them is refused with the reason and every attempt in the detail."""

    max_atoms: int = 24  #: atoms in the conventional cell
    max_formula_atoms: int = 8  #: atoms in one formula unit (no Ta3W2I27)
    #: atoms ≤ max_asymmetric × the general position's multiplicity: bounds the atoms
    #: pyxtal places freely (placing 40 atoms in P1 takes it ~40 s)
    max_asymmetric: int = 8
    min_distance_factor: float = 0.7  #: closest pair ≥ factor × (r_cov,i + r_cov,j)
    attempts: int = 10  #: compositions tried before the crystal is refused
    volume_factor: float = 1.1  #: pyxtal's volume factor over the atoms' own volume
    #: CPU seconds one pyxtal placement may take before the composition is given up
    #: (a few take pyxtal minutes: 48 atoms of 3 elements in Ia-3, docs/xrd.md); None: no
    #: limit.  With a limit the result can depend on the machine's speed; the workflow
    #: keeps the structures it made, so later stages never depend on it.  Applied only in
    #: a process's main thread (it uses a profiling timer signal).
    attempt_seconds: float | None = 2.0
    #: CPU seconds for all attempts of one crystal; None: no limit
    structure_seconds: float | None = 10.0


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


def random_composition(rng: np.random.Generator, max_atoms: int = 8) -> dict[str, int]:
    """Species and counts of one formula unit of at most ``max_atoms`` atoms (≥ 2 for
    compounds; elements have one)."""
    for _ in range(100):
        comp = _composition(rng)
        if sum(comp.values()) <= max_atoms:
            return comp
    return {str(rng.choice(METALS)): 1}


def _composition(rng: np.random.Generator) -> dict[str, int]:
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
    return _composition(rng)


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
    """A pymatgen structure in ``space_group`` from ``seed`` (same seed, same crystal
    unless a CPU limit cut an attempt short), or None when none was placed; see
    :func:`place_random_crystal` for the reason."""
    return place_random_crystal(space_group, seed, settings)[0]


def place_random_crystal(
    space_group: int, seed: int, settings: RandomCrystalSettings | None = None
) -> tuple[Any, tuple[str, str] | None]:
    """``(structure, None)``, or ``(None, (reason, detail))`` with reason
    ``placement_timeout`` (the CPU budget ran out), ``no_placement`` (every attempt
    failed) or ``no_composition`` (no composition fits the group's Wyckoff positions
    within the atom limits).  The detail lists each attempt: formula, atoms, outcome,
    CPU seconds."""
    s = settings or RandomCrystalSettings()
    rng = np.random.default_rng([seed, space_group])
    t_start, log = time.process_time(), []
    for _ in range(s.attempts):
        spent = time.process_time() - t_start
        if s.structure_seconds is not None and spent >= s.structure_seconds:
            return None, ("placement_timeout", _attempts(log, spent, s))
        budget = s.attempt_seconds
        if s.structure_seconds is not None:
            left = s.structure_seconds - spent
            budget = left if budget is None else min(budget, left)
        structure, entry = _attempt(space_group, rng, s, budget)
        if structure is not None:
            return structure, None
        log.append(entry)
    spent = time.process_time() - t_start
    reason = "no_composition" if all(e[2] == "no_z" for e in log) else "no_placement"
    if any(e[2] == "timeout" for e in log) and s.structure_seconds is not None:
        reason = "placement_timeout" if spent >= s.structure_seconds else reason
    return None, (reason, _attempts(log, spent, s))


def _attempts(log: list[tuple], spent: float, s: RandomCrystalSettings) -> str:
    tries = "; ".join(f"{f} ({n} atoms): {how} {t:.1f} s" for f, n, how, t in log)
    return f"{len(log)} attempts in {spent:.1f} CPU s (limit {s.structure_seconds}): {tries}"


def _attempt(space_group: int, rng: np.random.Generator, s: RandomCrystalSettings, budget):
    """One composition placed once: ``(structure, None)`` or ``(None, log entry)``."""
    from pyxtal import pyxtal
    from pyxtal.symmetry import Group
    from pyxtal.tolerance import Tol_matrix

    group = Group(space_group)
    limit = min(s.max_atoms, s.max_asymmetric * group[0].multiplicity)
    comp = random_composition(rng, s.max_formula_atoms)
    formula = "".join(f"{el}{n if n > 1 else ''}" for el, n in comp.items())
    species, per_fu = list(comp), np.array(list(comp.values()))
    options = [
        z
        for z in range(1, limit // int(per_fu.sum()) + 1)
        if group.check_compatible((z * per_fu).tolist())[0]
    ]
    if not options:
        return None, (formula, 0, "no_z", 0.0)
    # Mostly the smallest cells: they are the common case and the cheapest.
    z = options[0] if rng.uniform() < 0.6 or len(options) == 1 else int(rng.choice(options[1:]))
    n_atoms = int(z * per_fu.sum())
    state = int(rng.integers(2**31))
    # pyxtal's "atomic" tolerances are factor/2 times the covalent radius sum.
    tm = Tol_matrix(prototype="atomic", factor=2.0 * s.min_distance_factor)
    crystal, t0, how = pyxtal(), time.process_time(), "invalid"
    try:
        with _cpu_limit(budget):
            crystal.from_random(
                3, space_group, species, (z * per_fu).tolist(),
                factor=s.volume_factor, random_state=state, tm=tm,
            )  # fmt: skip
    except _TimeUp:
        how = "timeout"
    except Exception as err:  # pyxtal raises many kinds for a composition it cannot place
        how = f"error {type(err).__name__}"
    seconds = time.process_time() - t0
    if how == "invalid" and crystal.valid:
        structure = crystal.to_pymatgen()
        if _closest_pair_ok(structure, s.min_distance_factor):
            return structure, None
        how = "too_close"
    return None, (formula, n_atoms, how, seconds)
