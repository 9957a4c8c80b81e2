"""Checks that refuse a structure before any site or simulation job is made from it.

What an engine can take (FEFF's atoms and potentials per cluster) is checked per item by
the simulation stage's inputs step, so that the structures do not depend on the engine.

Reasons (the ``reason`` column of ``rejected.csv``):

``unreadable``            the file cannot be read (from :mod:`mlxas.structures.readers`)
``partial_occupancy``     a site is partially occupied (from the readers)
``degenerate_cell``       periodic, but the cell has no volume
``atoms_too_close``       two atoms closer than :data:`MIN_DISTANCE`
``no_absorber``           no atom of the absorbing element (when the experiment has one)
``duplicate``             the same structure (same structure id) came earlier in the source
``relaxation_failed``     a generated nanoparticle's relaxation did not converge
``generation_failed``     a random crystal could not be made (``random_molecular``)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = ["MIN_DISTANCE", "Rejection", "check_structure", "min_distance"]

#: Closer than this (Å) no real structure has atoms; FEFF would stop on "atoms very close".
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
    """Smallest interatomic distance (Å), with periodic images if the structure is periodic."""
    if len(atoms) < 2 and not np.any(atoms.pbc):
        return float("inf")
    if np.any(atoms.pbc):
        from ase.neighborlist import neighbor_list

        d = neighbor_list("d", atoms, MIN_DISTANCE * 2)
        return float(d.min()) if len(d) else float("inf")
    from scipy.spatial import cKDTree

    d, _ = cKDTree(atoms.positions).query(atoms.positions, k=2)
    return float(d[:, 1].min())


def check_structure(atoms: Atoms, absorber: str | None) -> tuple[str, str] | None:
    """Return ``(reason, detail)`` if the structure must be refused, else ``None``.

    ``absorber`` None (experiments without an absorbing element) skips ``no_absorber``.
    """
    symbols = np.asarray(atoms.get_chemical_symbols())
    if len(atoms) == 0:
        return "unreadable", "structure has no atoms"
    if np.any(atoms.pbc) and abs(atoms.cell.volume) < 1e-6:
        return "degenerate_cell", "periodic structure whose cell has no volume"
    if absorber and not np.any(symbols == absorber):
        present = ", ".join(sorted(set(symbols.tolist())))
        return "no_absorber", f"no {absorber} atom (elements present: {present})"
    dmin = min_distance(atoms)
    if dmin < MIN_DISTANCE:
        return "atoms_too_close", f"two atoms are {dmin:.3f} Å apart (minimum {MIN_DISTANCE} Å)"
    return None
