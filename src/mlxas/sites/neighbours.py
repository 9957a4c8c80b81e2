"""Neighbour pairs of a structure, all at once: one condensed distance matrix (small
clusters), one KD-tree (large clusters) or one ASE neighbour list (periodic structures)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from ase import Atoms

__all__ = ["neighbour_pairs"]

#: Clusters up to this size use scipy's pdist (all pairs); larger ones a KD-tree.
DENSE_ATOMS = 600


@lru_cache(maxsize=8)
def _upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, 1)
    return i.astype(np.int64), j.astype(np.int64)


def neighbour_pairs(
    atoms: Atoms, r_max: float, centres: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, d)``: every centre ``i``, neighbour ``j`` and distance ``d`` (Å) <= ``r_max``.

    ``centres`` restricts ``i`` (default: every atom).  Periodic images count as
    neighbours (an atom can neighbour its own image); ``j`` is then the index of the
    image's original atom.
    """
    n = len(atoms)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if n == 0 or (centres is not None and len(centres) == 0):
        return empty
    if np.any(atoms.pbc):
        from ase.neighborlist import neighbor_list

        i, j, d = neighbor_list("ijd", atoms, r_max)
        i, j = i.astype(np.int64), j.astype(np.int64)
    elif n == 1:
        return empty
    elif n <= DENSE_ATOMS:
        from scipy.spatial.distance import pdist

        dist = pdist(atoms.positions)
        near = dist <= r_max
        ui, uj = _upper_pairs(n)
        a, b, dd = ui[near], uj[near], dist[near]
        i, j, d = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([dd, dd])
    else:
        from scipy.spatial import cKDTree

        p = cKDTree(atoms.positions).query_pairs(r_max, output_type="ndarray").astype(np.int64)
        i = np.concatenate([p[:, 0], p[:, 1]])
        j = np.concatenate([p[:, 1], p[:, 0]])
        d = np.linalg.norm(atoms.positions[j] - atoms.positions[i], axis=1)
    if centres is not None and len(centres) < n:
        keep = np.zeros(n, dtype=bool)
        keep[centres] = True
        mask = keep[i]
        i, j, d = i[mask], j[mask], d[mask]
    return i, j, d
