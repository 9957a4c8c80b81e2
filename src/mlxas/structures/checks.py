"""Checks that refuse a structure before any FEFF job is written for it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = ["MIN_DISTANCE", "Rejection", "check_structure", "min_distance"]

#: Closer than this (Å) no real structure has atoms; FEFF would warn "atoms very close".
MIN_DISTANCE = 0.9


@dataclass(frozen=True)
class Rejection:
    """A refused input: the file (or generator), the frame, and a machine-readable reason."""

    origin: str
    frame: int | None
    reason: str
    detail: str

    def row(self) -> dict:
        return {
            "origin": self.origin,
            "frame": self.frame,
            "reason": self.reason,
            "detail": self.detail,
        }


def min_distance(atoms: Atoms) -> float:
    """Smallest interatomic distance (Å), with the minimum-image convention if periodic."""
    if len(atoms) < 2:
        return float("inf")
    if np.any(atoms.pbc):
        from ase.neighborlist import neighbor_list

        d = neighbor_list("d", atoms, MIN_DISTANCE * 2)
        return float(d.min()) if len(d) else float("inf")
    from scipy.spatial import cKDTree

    d, _ = cKDTree(atoms.positions).query(atoms.positions, k=2)
    return float(d[:, 1].min())


def check_structure(
    atoms: Atoms, absorber: str, max_potentials: int | None = None
) -> tuple[str, str] | None:
    """Return ``(reason, detail)`` if the structure must be refused, else ``None``."""
    symbols = atoms.get_chemical_symbols()
    if absorber not in symbols:
        present = ", ".join(sorted(set(symbols)))
        return "no_absorber", f"no {absorber} atom (elements present: {present})"
    dmin = min_distance(atoms)
    if dmin < MIN_DISTANCE:
        return "atoms_too_close", f"two atoms are {dmin:.3f} Å apart (minimum {MIN_DISTANCE} Å)"
    if max_potentials is not None:
        # One potential for the absorber plus one per element present.
        n_pot = 1 + len(set(symbols))
        if n_pot > max_potentials:
            return (
                "too_many_potentials",
                f"{n_pot} unique potentials needed, engine allows {max_potentials}",
            )
    return None
