"""Sutton–Chen many-body potential for fcc metals, as an ASE calculator.

The energy of a one-element system is (Sutton & Chen, Phil. Mag. Lett. 61 (1990) 139)::

    E = ε [ ½ Σ_i Σ_{j≠i} (a/r_ij)^n  −  c Σ_i √ρ_i ],      ρ_i = Σ_{j≠i} (a/r_ij)^m

with ε in eV, the fcc lattice constant a in Å, and integer exponents n > m.  The
published ε and c make the perfect fcc crystal (all lattice sums, no cutoff) have its
energy minimum at the experimental lattice constant a and the experimental cohesive
energy; :data:`PARAMETERS` holds the published values.

Both terms decay as powers of r, so the potential has a long range.  Free clusters are
computed with every pair (no cutoff: exact).  Periodic systems need a cutoff; the default,
:data:`PERIODIC_CUTOFF` = 3 lattice constants, leaves out 0.5 % of the fcc lattice sum ρ
for m = 6, 0.1 % for m = 7 and 0.02 % for m = 8.  For bulk Au that is 0.7 meV per atom
and 0.0001 Å in the lattice constant; for the m = 6 metals 10–23 meV and 0.0015 Å
(table in ``docs/md.md``).  Give a larger ``cutoff`` where that matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

__all__ = ["PARAMETERS", "PERIODIC_CUTOFF", "SCParameters", "SuttonChen", "sutton_chen_parameters"]


@dataclass(frozen=True)
class SCParameters:
    """One element's Sutton–Chen parameters: exponents n, m; ε (eV); c; a (Å)."""

    n: int
    m: int
    epsilon: float
    c: float
    a: float


#: Sutton & Chen (1990), table 1.  With these values the infinite fcc lattice sums give
#: the equilibrium lattice constant a and the cohesive energies the potential was fitted
#: to (Au: a = 4.08 Å, 3.78 eV per atom); ``tests/test_sutton_chen.py`` checks both.
PARAMETERS: dict[str, SCParameters] = {
    "Ni": SCParameters(9, 6, 1.5707e-2, 39.432, 3.52),
    "Cu": SCParameters(9, 6, 1.2382e-2, 39.432, 3.61),
    "Rh": SCParameters(12, 6, 4.9371e-3, 144.41, 3.80),
    "Pd": SCParameters(12, 7, 4.1790e-3, 108.27, 3.89),
    "Ag": SCParameters(12, 6, 2.5415e-3, 144.41, 4.09),
    "Ir": SCParameters(14, 6, 2.4489e-3, 334.94, 3.84),
    "Pt": SCParameters(10, 8, 1.9833e-2, 34.408, 3.92),
    "Au": SCParameters(10, 8, 1.2793e-2, 34.408, 4.08),
    "Pb": SCParameters(10, 7, 5.5765e-3, 45.778, 4.95),
    "Al": SCParameters(7, 6, 3.3147e-2, 16.399, 4.05),
}

#: Default cutoff for periodic systems, in units of the lattice constant a.
PERIODIC_CUTOFF = 3.0


def sutton_chen_parameters(element: str) -> SCParameters:
    """Published parameters for ``element``; a clear error for elements without them."""
    try:
        return PARAMETERS[element]
    except KeyError:
        known = ", ".join(PARAMETERS)
        raise ValueError(
            f"no Sutton–Chen parameters for {element!r}; published for {known} "
            "(use potential: emt for other metals ASE's EMT knows)"
        ) from None


def _power(x: np.ndarray, k: int) -> np.ndarray:
    """x**k for a non-negative integer k by repeated squaring (much faster than np.power)."""
    result = None
    base = x
    while k:
        if k & 1:
            result = base if result is None else result * base
        k >>= 1
        if k:
            base = base * base
    return np.ones_like(x) if result is None else result


def _powers(inv2: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(a/r)^n and (a/r)^m from (a/r)^2; (a/r)^n is built on (a/r)^m to save products."""
    s = np.sqrt(inv2) if (n % 2 or m % 2) else None
    vm = _power(inv2, m // 2)
    if m % 2:
        vm = vm * s
    d = n - m
    vn = vm * _power(inv2, d // 2) if d >= 2 else vm
    if d % 2:
        vn = vn * s
    return vn, vm


class SuttonChen(Calculator):
    """Sutton–Chen potential for a single element: energy, per-atom energies, forces, stress.

    Parameters
    ----------
    element:
        Chemical symbol with published parameters (:data:`PARAMETERS`); the calculator
        refuses atoms of any other element.
    parameters:
        Explicit :class:`SCParameters`, overriding the published ones.
    cutoff:
        Interaction cutoff in Å.  ``None``: every pair for free clusters (exact) and
        :data:`PERIODIC_CUTOFF` × a for periodic cells.
    """

    implemented_properties: ClassVar[list[str]] = [
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
    ]
    nolabel = True

    def __init__(
        self,
        element: str = "Au",
        parameters: SCParameters | None = None,
        cutoff: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        from ase.data import atomic_numbers

        if element not in atomic_numbers:
            raise ValueError(f"unknown element {element!r}")
        self.element = element
        self.number = atomic_numbers[element]
        self.sc = parameters if parameters is not None else sutton_chen_parameters(element)
        self.cutoff = cutoff

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        """What changed since the last calculation: exact comparison of what E depends on.

        ASE's generic check compares every array with ``np.isclose``, which costs as much
        as the potential itself for a 150-atom cluster in MD.
        """
        old = self.atoms
        if old is None or len(old) != len(atoms):
            return list(all_changes)
        changes = []
        if not np.array_equal(old.positions, atoms.positions):
            changes.append("positions")
        if not np.array_equal(old.numbers, atoms.numbers):
            changes.append("numbers")
        if not np.array_equal(old.cell.array, atoms.cell.array):
            changes.append("cell")
        if not np.array_equal(old.pbc, atoms.pbc):
            changes.append("pbc")
        return changes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if np.any(atoms.numbers != self.number):
            others = sorted(set(atoms.get_chemical_symbols()) - {self.element})
            raise ValueError(f"Sutton–Chen for {self.element} cannot treat {', '.join(others)}")
        want_stress = "stress" in properties
        if want_stress and (atoms.cell.rank != 3 or not np.all(atoms.pbc)):
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("stress needs a cell periodic in 3 dimensions")
        if not np.any(atoms.pbc) and self.cutoff is None:
            energies, forces = self._all_pairs(atoms.positions)
        else:
            energies, forces, virial = self._neighbour_pairs(atoms)
            if want_stress:
                stress = virial / atoms.get_volume()
                self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]
        energy = float(energies.sum())
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = energies
        self.results["forces"] = forces

    def _all_pairs(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-atom energies (eV) and forces (eV/Å) of a free cluster from the full pair matrix.

        N × N arrays beat a pair list for clusters of a few hundred atoms; the memory
        (about ten N × N float64 arrays) limits this path to a few thousand atoms.
        """
        sc = self.sc
        # Centre first so that the Gram-matrix distances lose no digits.
        pos = positions - positions.mean(axis=0)
        sq = np.einsum("ij,ij->i", pos, pos)
        r2 = sq[:, None] + sq[None, :] - 2.0 * (pos @ pos.T)
        np.fill_diagonal(r2, np.inf)
        inv2 = (sc.a * sc.a) / r2
        vn, vm = _powers(inv2, sc.n, sc.m)
        sqrt_rho = np.sqrt(vm.sum(axis=1))
        energies = sc.epsilon * (0.5 * vn.sum(axis=1) - sc.c * sqrt_rho)
        half_inv = _half_inverse(sqrt_rho)
        # dE/dr_ij / r_ij: ε [−n (a/r)^n + c m (1/2√ρ_i + 1/2√ρ_j) (a/r)^m] / r²
        g = (
            sc.epsilon
            * (sc.c * sc.m * (half_inv[:, None] + half_inv[None, :]) * vm - sc.n * vn)
            / r2
        )
        # F_i = Σ_j g_ij (r_j − r_i)
        forces = g @ pos - g.sum(axis=1)[:, None] * pos
        return energies, forces

    def _neighbour_pairs(self, atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-atom energies, forces and the virial (eV) from an ASE neighbour list."""
        from ase.neighborlist import neighbor_list

        sc = self.sc
        n_atoms = len(atoms)
        cutoff = self.cutoff if self.cutoff is not None else PERIODIC_CUTOFF * sc.a
        i, j, D, S = neighbor_list("ijDS", atoms, cutoff)
        # The list holds each pair twice, as (i, j, S) and (j, i, −S); keep one of them.
        first = np.where(S[:, 0] != 0, S[:, 0], np.where(S[:, 1] != 0, S[:, 1], S[:, 2]))
        keep = (i < j) | ((i == j) & (first > 0))
        i, j, D = i[keep], j[keep], D[keep]

        r2 = np.einsum("ij,ij->i", D, D)
        inv2 = (sc.a * sc.a) / r2
        vn, vm = _powers(inv2, sc.n, sc.m)
        rho = np.bincount(i, vm, n_atoms) + np.bincount(j, vm, n_atoms)
        pair = np.bincount(i, vn, n_atoms) + np.bincount(j, vn, n_atoms)
        sqrt_rho = np.sqrt(rho)
        energies = sc.epsilon * (0.5 * pair - sc.c * sqrt_rho)
        half_inv = _half_inverse(sqrt_rho)
        g = sc.epsilon * (sc.c * sc.m * (half_inv[i] + half_inv[j]) * vm - sc.n * vn) / r2
        gD = g[:, None] * D  # D = r_j − r_i: +gD acts on i, −gD on j
        forces = np.empty((n_atoms, 3))
        for k in range(3):
            forces[:, k] = np.bincount(i, gD[:, k], n_atoms) - np.bincount(j, gD[:, k], n_atoms)
        virial = np.einsum("p,pa,pb->ab", g, D, D)  # Σ (dE/dr) D⊗D / r
        return energies, forces, virial


def _half_inverse(sqrt_rho: np.ndarray) -> np.ndarray:
    """1 / (2√ρ), zero for an isolated atom (ρ = 0), whose embedding term has no force."""
    out = np.zeros_like(sqrt_rho)
    np.divide(0.5, sqrt_rho, out=out, where=sqrt_rho > 0)
    return out
