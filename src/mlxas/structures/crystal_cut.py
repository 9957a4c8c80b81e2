"""Clusters cut from any periodic crystal: spheres and faceted polyhedra, with surface sites.

A cluster is every atom of the infinite crystal inside a region around a centre:

``sphere``
    within ``radius`` Å of the centre;
``polyhedron``
    inside every plane of the facet families ``{hkl: distance}``: for each Miller index
    the symmetry-equivalent planes (pymatgen's
    ``get_symmetrically_equivalent_miller_indices``) at ``distance`` Å from the centre,
    normals along the reciprocal-lattice vectors, so the faces are true crystal planes;
``cube``, ``octahedron``, ``rhombic_dodecahedron``, ``cuboctahedron``,
``truncated_octahedron``
    polyhedra of {100}, {111}, {110} families (:data:`NAMED_SHAPES`), ``size`` being the
    distance (Å) to the first family's facets; they are the textbook shapes for cubic cells.

The centre is an atom of the crystal (``atom``: the first atom of the cell; an element
symbol: the first atom of that element) or a point in fractional coordinates of the cell
(e.g. ``[0.5, 0, 0]``, an octahedral hole of fcc).  Surface atoms are those with fewer
first-shell neighbours than the same atom in the infinite crystal; the first shell ends
half-way between the first and second neighbour distances of the crystal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

__all__ = [
    "NAMED_SHAPES",
    "bulk_coordination",
    "centre_point",
    "cluster_coordination",
    "cut_region",
    "first_shell_cutoff",
    "named_facets",
    "supercell",
]

_S3 = 2.0 / np.sqrt(3.0)
#: Facet families of the named shapes, as {Miller index: distance relative to ``size``}.
NAMED_SHAPES: dict[str, dict[tuple[int, int, int], float]] = {
    "cube": {(1, 0, 0): 1.0},
    "octahedron": {(1, 1, 1): 1.0},
    "rhombic_dodecahedron": {(1, 1, 0): 1.0},
    # {111} planes through the cube's edge midpoints: x + y + z = 2d, i.e. at 2d/√3.
    "cuboctahedron": {(1, 0, 0): 1.0, (1, 1, 1): _S3},
    # octahedron |x|+|y|+|z| <= 3s cut by |x| <= 2s: {100} at (2/√3) × the {111} distance.
    "truncated_octahedron": {(1, 1, 1): 1.0, (1, 0, 0): _S3},
}
#: Points closer than this (Å) to a boundary count as inside (so shells on a sphere or a
#: facet are kept whole despite rounding).
EDGE_TOLERANCE = 1e-4


def named_facets(shape: str, size: float) -> dict[tuple[int, int, int], float]:
    """The facet families of a named shape scaled to ``size`` (Å)."""
    if shape not in NAMED_SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(NAMED_SHAPES)}")
    return {hkl: rel * float(size) for hkl, rel in NAMED_SHAPES[shape].items()}


def supercell(atoms: Atoms, width: float) -> Atoms:
    """``atoms`` repeated until every perpendicular width of the cell is >= ``width`` Å.

    Thermal snapshots and defects need this: a displacement or a vacancy in a small cell
    would repeat in every image of the FEFF cluster.
    """
    widths = 1.0 / np.linalg.norm(atoms.cell.reciprocal(), axis=1)
    reps = np.maximum(1, np.ceil(width / widths - 1e-9)).astype(int)
    out = atoms.repeat(tuple(int(r) for r in reps))
    out.arrays["parent_index"] = np.tile(np.arange(len(atoms)), int(np.prod(reps)))
    return out


def centre_point(atoms: Atoms, center: str | Sequence[float]) -> np.ndarray:
    """Cartesian centre (Å) for ``atom``, an element symbol, or fractional coordinates."""
    if isinstance(center, str):
        if center == "atom":
            return atoms.positions[0].copy()
        hits = np.nonzero(np.array(atoms.get_chemical_symbols()) == center)[0]
        if len(hits) == 0:
            raise ValueError(f"center: the crystal has no {center} atom")
        return atoms.positions[hits[0]].copy()
    frac = np.asarray(center, dtype=float)
    if frac.shape != (3,):
        raise ValueError(f"center: give atom, an element or 3 fractional coordinates, got {center}")
    return frac @ atoms.cell.array


def _block(atoms: Atoms, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions and parent-cell indices of every crystal atom within ``radius`` Å of
    ``centre``."""
    widths = 1.0 / np.linalg.norm(atoms.cell.reciprocal(), axis=1)
    c_frac = np.linalg.solve(atoms.cell.array.T, centre)
    n = np.ceil(radius / widths).astype(int) + 1
    grid = np.stack(
        np.meshgrid(
            *[
                np.arange(int(np.floor(c - k)), int(np.ceil(c + k)) + 1)
                for c, k in zip(c_frac, n, strict=True)
            ],
            indexing="ij",
        ),
        axis=-1,
    ).reshape(-1, 3)
    frac = atoms.get_scaled_positions(wrap=True)
    pos = (grid[:, None, :] + frac[None, :, :]).reshape(-1, 3) @ atoms.cell.array
    index = np.tile(np.arange(len(atoms)), len(grid))
    keep = np.linalg.norm(pos - centre, axis=1) <= radius + EDGE_TOLERANCE
    return pos[keep], index[keep]


def _facet_normals(atoms: Atoms, facets: Mapping[tuple[int, int, int], float]):
    from pymatgen.core.surface import get_symmetrically_equivalent_miller_indices
    from pymatgen.io.ase import AseAtomsAdaptor

    struct = AseAtomsAdaptor.get_structure(atoms)
    recip = atoms.cell.reciprocal()
    normals, dists = [], []
    for hkl, dist in facets.items():
        if float(dist) <= 0:
            raise ValueError(f"facet {hkl}: distance must be > 0 Å, got {dist}")
        if not any(hkl):
            raise ValueError("facet (0, 0, 0) is not a plane")
        for eq in get_symmetrically_equivalent_miller_indices(struct, tuple(int(h) for h in hkl)):
            g = np.asarray(eq, float) @ recip
            normals.append(g / np.linalg.norm(g))
            dists.append(float(dist))
    return np.array(normals), np.array(dists)


def first_shell_cutoff(atoms: Atoms, tolerance: float = 0.05) -> float:
    """Half-way (Å) between the first and second distinct neighbour distances of a
    periodic crystal (distances closer than ``tolerance`` Å count as one)."""
    from ase.neighborlist import neighbor_list

    d_min = None
    r = 4.0
    while True:
        d = np.sort(neighbor_list("d", atoms, r))
        if len(d):
            d_min = d[0]
            groups = d[np.concatenate([[True], np.diff(d) > tolerance])]
            if len(groups) >= 2:
                return float((groups[0] + groups[1]) / 2)
        if r > 20.0:
            raise ValueError("crystal has fewer than two neighbour shells within 20 Å")
        r = max(2 * r, 2.5 * (d_min or r))


def cluster_coordination(positions: np.ndarray, cutoff: float) -> np.ndarray:
    """Neighbours of every atom of a cluster within ``cutoff`` Å."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(positions).query_pairs(cutoff, output_type="ndarray")
    return np.bincount(pairs.ravel(), minlength=len(positions))


def bulk_coordination(atoms: Atoms, cutoff: float) -> np.ndarray:
    """Neighbours of every atom of a periodic crystal within ``cutoff`` Å."""
    from ase.neighborlist import neighbor_list

    i = neighbor_list("i", atoms, cutoff)
    return np.bincount(i, minlength=len(atoms))


def cut_region(
    atoms: Atoms,
    center: str | Sequence[float],
    radius: float | None = None,
    facets: Mapping[tuple[int, int, int], float] | None = None,
    min_neighbours: int = 1,
) -> Atoms:
    """A cluster cut from the periodic crystal ``atoms``: a sphere of ``radius`` Å, or the
    polyhedron of ``facets`` ({Miller index: distance in Å}), around ``center``.

    Atoms left with fewer than ``min_neighbours`` first-shell neighbours (a corner atom
    of a cut covalent crystal hanging by one bond, or by none) are removed, repeatedly,
    until none is left; 1 removes isolated atoms only.

    The result is centred on the cut centre, has no cell, and carries per-atom arrays
    ``parent_index`` (the atom of the crystal's cell it copies) and ``surface`` (fewer
    first-shell neighbours than in the crystal).
    """
    if (radius is None) == (facets is None):
        raise ValueError("give a sphere radius or polyhedron facets, not both")
    c = centre_point(atoms, center)
    if radius is not None:
        if float(radius) <= 0:
            raise ValueError(f"sphere: radius must be > 0 Å, got {radius}")
        pos, index = _block(atoms, c, float(radius))
    else:
        normals, dists = _facet_normals(atoms, facets)
        # The polyhedron lies within the sphere through its farthest vertex; bounding it
        # by the facet distances times √3 covers every shape built from these families.
        pos, index = _block(atoms, c, float(dists.max()) * np.sqrt(3.0) * 1.5)
        inside = np.all((pos - c) @ normals.T <= dists[None, :] + EDGE_TOLERANCE, axis=1)
        pos, index = pos[inside], index[inside]
    if len(pos) == 0:
        raise ValueError("the region around this centre holds no atom")
    cutoff = first_shell_cutoff(atoms)
    while True:
        cn = cluster_coordination(pos, cutoff)
        keep = cn >= min_neighbours
        if keep.all() or not keep.any():
            break
        pos, index = pos[keep], index[keep]
    if not keep.any():
        raise ValueError(f"no atom of the region keeps {min_neighbours} neighbour(s)")
    symbols = np.array(atoms.get_chemical_symbols())[index]
    cluster = Atoms(list(symbols), positions=pos - c)
    cluster.arrays["parent_index"] = index.astype(int)
    cluster.arrays["surface"] = cn < bulk_coordination(atoms, cutoff)[index]
    return cluster
