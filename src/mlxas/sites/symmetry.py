"""Symmetry-equivalent atoms: spglib (through pymatgen) for crystals, the point group for
clusters.

For a cluster, a cheap invariant comes first: symmetry-equivalent atoms have the same
element, the same distance to the centroid and the same sorted distances to all other
atoms (within ``2 * symprec``).  When no two atoms share that fingerprint, as in an
MD snapshot, every atom is its own class and the point-group search is skipped.
Otherwise pymatgen's ``PointGroupAnalyzer`` finds the operations and each operation is
applied to all atoms at once, matched back through a KD-tree.
"""

from __future__ import annotations

import logging

import numpy as np
from ase import Atoms

__all__ = ["equivalent_sites"]

log = logging.getLogger(__name__)

#: Up to this many atoms the fingerprint holds all interatomic distances of an atom ...
_FULL_FINGERPRINT_ATOMS = 3000
#: ... above it, the distances to this many nearest neighbours.
_FINGERPRINT_NEIGHBOURS = 24


def equivalent_sites(atoms: Atoms, symprec: float = 0.1) -> list[list[int]]:
    """Groups of symmetry-equivalent atom indices; each group sorted, groups by first index.

    ``symprec`` (Å) is the distance within which a symmetry operation must map an atom
    onto an atom of the same element.
    """
    if len(atoms) == 0:
        return []
    if np.any(atoms.pbc):
        labels = _crystal_classes(atoms, symprec)
    else:
        labels = _cluster_classes(atoms, symprec)
    groups: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(int(lab), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def _crystal_classes(atoms: Atoms, symprec: float) -> np.ndarray:
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    structure = AseAtomsAdaptor.get_structure(atoms)
    dataset = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_dataset()
    return np.asarray(dataset.equivalent_atoms)


def _cluster_classes(atoms: Atoms, symprec: float) -> np.ndarray:
    from scipy.spatial import cKDTree

    n = len(atoms)
    numbers = atoms.numbers
    pos = atoms.positions
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    if n <= _FULL_FINGERPRINT_ATOMS:
        from scipy.spatial.distance import cdist

        d = np.sort(cdist(pos, pos), axis=1)
    else:
        d, _ = cKDTree(pos).query(pos, k=min(n - 1, _FINGERPRINT_NEIGHBOURS) + 1)
    fingerprint = np.column_stack([np.linalg.norm(pos - pos.mean(axis=0), axis=1), d[:, 1:]])
    cand = cKDTree(fingerprint).query_pairs(2 * symprec, p=np.inf, output_type="ndarray")
    cand = cand[numbers[cand[:, 0]] == numbers[cand[:, 1]]] if len(cand) else cand
    if len(cand) == 0:
        return np.arange(n)
    try:
        edges = _point_group_edges(atoms, symprec)
    except Exception as err:  # pymatgen fails on a few degenerate geometries
        log.warning(
            "point group analysis failed (%s); grouping atoms by neighbour fingerprints", err
        )
        edges = cand
    return _components(n, edges)


def _point_group_edges(atoms: Atoms, symprec: float) -> np.ndarray:
    """Pairs ``(i, j)`` that a point-group operation maps onto each other."""
    from pymatgen.core import Molecule
    from pymatgen.symmetry.analyzer import PointGroupAnalyzer
    from scipy.spatial import cKDTree

    mol = Molecule(atoms.get_chemical_symbols(), atoms.positions)
    ops = PointGroupAnalyzer(mol, tolerance=symprec).get_symmetry_operations()
    # pymatgen's operations act about the centre of mass
    p = atoms.positions - mol.center_of_mass
    tree = cKDTree(p)
    numbers = atoms.numbers
    edges = []
    idx_all = np.arange(len(atoms))
    for op in ops:
        dist, idx = tree.query(p @ op.rotation_matrix.T)
        ok = (dist <= symprec) & (numbers[idx] == numbers)
        edges.append(np.column_stack([idx_all[ok], idx[ok]]))
    return np.concatenate(edges) if edges else np.zeros((0, 2), dtype=np.int64)


def _components(n: int, edges: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` atoms, labelled by the smallest index."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = np.full(comp.max() + 1, n)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]
