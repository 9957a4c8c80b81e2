"""Checks that refuse a structure before any site or FEFF job is made from it.

Reasons (the ``reason`` column of ``rejected.csv``):

``unreadable``            the file cannot be read (from :mod:`mlxas.structures.readers`)
``partial_occupancy``     a site is partially occupied (from the readers)
``degenerate_cell``       periodic, but the cell has no volume
``atoms_too_close``       two atoms closer than :data:`MIN_DISTANCE`
``no_absorber``           no atom of the absorbing element
``too_many_atoms``        an absorber's FEFF cluster (atoms within ``cluster_radius``) is
                          larger than the FEFF engine allows
``too_many_potentials``   an absorber's FEFF cluster needs more unique potentials than the
                          engine allows
``duplicate``             the same structure (same structure id) came earlier in the source
``relaxation_failed``     a generated nanoparticle's relaxation did not converge
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = [
    "MIN_DISTANCE",
    "FeffLimits",
    "Rejection",
    "check_structure",
    "feff_cluster_sizes",
    "min_distance",
]

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


@dataclass(frozen=True)
class FeffLimits:
    """What one FEFF run can take: atoms and unique potentials of the cluster around an
    absorber, where the cluster is every atom within ``cluster_radius`` (Å)."""

    max_atoms: int | None
    max_potentials: int | None
    cluster_radius: float
    engine: str = "FEFF"


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


def feff_cluster_sizes(
    atoms: Atoms, centres: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Atoms (absorber included) and unique potentials of the FEFF cluster of each centre.

    The potential count follows FEFF's ipot rule used by :mod:`mlxas.feff.inputs`: one for
    the absorber plus one per element among the other atoms of the cluster.
    """
    centres = np.asarray(centres, dtype=np.int64)
    if np.any(atoms.pbc):
        from ase.neighborlist import neighbor_list

        i, j = neighbor_list("ij", atoms, radius)
    else:
        from scipy.spatial import cKDTree

        tree = cKDTree(atoms.positions)
        if len(np.unique(atoms.numbers)) == 1:
            # one element: the count is all that matters (the centre is in it)
            n = tree.query_ball_point(atoms.positions[centres], radius, return_length=True)
            return n.astype(np.int64), 1 + (n > 1)
        pairs = tree.query_pairs(radius, output_type="ndarray").astype(np.int64)
        i = np.concatenate([pairs[:, 0], pairs[:, 1]])
        j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    slot = np.full(len(atoms), -1)
    slot[centres] = np.arange(len(centres))
    s = slot[i]
    keep = s >= 0
    s, j = s[keep], j[keep]
    n_atoms = np.bincount(s, minlength=len(centres)) + 1
    # distinct (centre, element) pairs count the elements around each centre
    pairs = np.unique(s * 128 + atoms.numbers[j])
    n_pots = np.bincount(pairs // 128, minlength=len(centres)) + 1
    return n_atoms, n_pots


def check_structure(
    atoms: Atoms, absorber: str, limits: FeffLimits | None = None
) -> tuple[str, str] | None:
    """Return ``(reason, detail)`` if the structure must be refused, else ``None``."""
    symbols = np.asarray(atoms.get_chemical_symbols())
    if len(atoms) == 0:
        return "unreadable", "structure has no atoms"
    if np.any(atoms.pbc) and abs(atoms.cell.volume) < 1e-6:
        return "degenerate_cell", "periodic structure whose cell has no volume"
    centres = np.nonzero(symbols == absorber)[0]
    if len(centres) == 0:
        present = ", ".join(sorted(set(symbols.tolist())))
        return "no_absorber", f"no {absorber} atom (elements present: {present})"
    dmin = min_distance(atoms)
    if dmin < MIN_DISTANCE:
        return "atoms_too_close", f"two atoms are {dmin:.3f} Å apart (minimum {MIN_DISTANCE} Å)"
    if limits is None:
        return None
    n_atoms, n_pots = feff_cluster_sizes(atoms, centres, limits.cluster_radius)
    where = f"within feff.cluster_radius = {limits.cluster_radius:g} Å"
    if limits.max_atoms is not None and n_atoms.max() > limits.max_atoms:
        worst = int(np.argmax(n_atoms))
        over = int((n_atoms > limits.max_atoms).sum())
        return (
            "too_many_atoms",
            f"{over} of {len(centres)} {absorber} sites have more than {limits.max_atoms} atoms "
            f"{where} (up to {n_atoms[worst]} around atom {centres[worst]}); "
            f"{limits.engine} allows {limits.max_atoms}: lower feff.cluster_radius",
        )
    if limits.max_potentials is not None and n_pots.max() > limits.max_potentials:
        worst = int(np.argmax(n_pots))
        over = int((n_pots > limits.max_potentials).sum())
        return (
            "too_many_potentials",
            f"{over} of {len(centres)} {absorber} sites need more than {limits.max_potentials} "
            f"unique potentials {where} (up to {n_pots[worst]} around atom {centres[worst]}); "
            f"{limits.engine} allows {limits.max_potentials}",
        )
    return None
