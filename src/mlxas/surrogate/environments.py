"""Absorbing sites and their neighbours: the input every surrogate model starts from.

A site's *environment* is the absorber's element and the positions (Å, relative to the
absorber) and elements of all atoms within a cutoff radius, sorted by distance -- the
same atoms that :func:`mlxas.feff.inputs.cluster_around` writes into ``feff.inp`` for
that radius (periodic images count, as in ASE's neighbour list; finite clusters by plain
distances).  Atoms at equal distances are ordered by atom index and position, which may
differ from ``feff.inp``'s order; nothing downstream depends on that order.

Many sites are held in one :class:`Environments` object (a ragged, CSR-like layout:
``offsets[i]:offsets[i+1]`` are the neighbours of site ``i``), which is what the
descriptor and graph featurisers take, so that whole structures are processed with array
operations rather than one Python call per site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = ["Environments", "SurrogateInputError", "environments", "from_clusters"]


class SurrogateInputError(ValueError):
    """A structure, site or setting the surrogate cannot take; the message says why."""


@dataclass(frozen=True)
class Environments:
    """Neighbours of many absorbing sites.

    ``absorber``: element symbol of each site [n_sites]; ``offsets``: int64 [n_sites + 1];
    ``vectors``: float64 [n_total, 3], neighbour positions relative to the absorber (Å),
    sorted by distance within each site; ``symbols``: element of each neighbour
    [n_total]; ``cutoff``: the radius used (Å).
    """

    absorber: np.ndarray
    offsets: np.ndarray
    vectors: np.ndarray
    symbols: np.ndarray
    cutoff: float

    def __len__(self) -> int:
        return len(self.absorber)

    @property
    def counts(self) -> np.ndarray:
        """Neighbours per site."""
        return np.diff(self.offsets)

    @property
    def distances(self) -> np.ndarray:
        """Distance (Å) of every neighbour from its absorber, [n_total]."""
        return np.linalg.norm(self.vectors, axis=1)

    def site(self, i: int) -> tuple[str, np.ndarray, np.ndarray]:
        """(absorber element, neighbour vectors [n, 3], neighbour elements [n]) of site i."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return str(self.absorber[i]), self.vectors[a:b], self.symbols[a:b]

    def take(self, rows: Sequence[int] | np.ndarray) -> Environments:
        """The environments of the sites ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.counts[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(counts)
        idx = _ranges(self.offsets[rows], counts)
        return Environments(
            self.absorber[rows], offsets, self.vectors[idx], self.symbols[idx], self.cutoff
        )

    @staticmethod
    def concat(parts: Sequence[Environments]) -> Environments:
        """One object holding the sites of ``parts`` in order (same cutoff required)."""
        if not parts:
            raise SurrogateInputError("no environments to concatenate")
        cutoffs = {p.cutoff for p in parts}
        if len(cutoffs) != 1:
            raise SurrogateInputError(f"environments with different cutoffs: {sorted(cutoffs)}")
        counts = np.concatenate([p.counts for p in parts])
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(counts)
        return Environments(
            np.concatenate([p.absorber for p in parts]),
            offsets,
            np.concatenate([p.vectors for p in parts]),
            np.concatenate([p.symbols for p in parts]),
            parts[0].cutoff,
        )


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each start and count, without a loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + (np.arange(total) - first)


def environments(
    atoms: Atoms, indices: Sequence[int] | np.ndarray | None, cutoff: float
) -> Environments:
    """Environments of the sites ``indices`` (all atoms if None) of one structure.

    ``cutoff`` (Å): neighbours at a distance ≤ cutoff are kept (as in ``cluster_around``).
    Raises :class:`SurrogateInputError` for an index outside the structure or a
    non-positive cutoff.
    """
    if not cutoff > 0:
        raise SurrogateInputError(f"neighbour cutoff must be positive, got {cutoff!r} Å")
    n = len(atoms)
    idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise SurrogateInputError(
            f"site index {int(idx.max() if idx.max() >= n else idx.min())} is outside the "
            f"structure {atoms.get_chemical_formula()} ({n} atoms)"
        )
    symbols = np.asarray(atoms.get_chemical_symbols())
    if np.any(atoms.pbc):
        centre, nbr, vec = _periodic_pairs(atoms, cutoff)
    else:
        centre, nbr, vec = _finite_pairs(atoms.positions, cutoff)
    # Keep the pairs of the requested sites, grouped by site in the order of `idx`
    # (a site may be asked for twice), each group sorted by distance as cluster_around does.
    order = np.argsort(centre, kind="stable")
    centre, nbr, vec = centre[order], nbr[order], vec[order]
    starts = np.searchsorted(centre, np.arange(n + 1))
    counts = starts[idx + 1] - starts[idx]
    take = _ranges(starts[idx], counts)
    vec, nbr = vec[take], nbr[take]
    site_of = np.repeat(np.arange(len(idx)), counts)
    dist = np.linalg.norm(vec, axis=1)
    # By distance (rounded, so that round-off does not decide ties), then neighbour index
    # and position: the order does not depend on how the pairs were found.
    order = np.lexsort((vec[:, 2], vec[:, 1], vec[:, 0], nbr, np.round(dist, 9), site_of))
    offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(counts)
    return Environments(symbols[idx], offsets, vec[order], symbols[nbr[order]], float(cutoff))


def _finite_pairs(positions: np.ndarray, cutoff: float):
    """All ordered pairs (i, j), i ≠ j, with |r_j − r_i| ≤ cutoff, and r_j − r_i."""
    from scipy.spatial import cKDTree

    tree = cKDTree(positions)
    pairs = tree.query_pairs(cutoff, output_type="ndarray")
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return i, j, positions[j] - positions[i]


def _periodic_pairs(atoms: Atoms, cutoff: float):
    """Pairs within ``cutoff`` counting periodic images, as ASE's ``neighbor_list("ijD")``
    finds them, from a k-d tree over enough images of the cell (~50x faster for cells of
    a hundred atoms; equality with ASE's list is tested)."""
    from scipy.spatial import cKDTree

    pos = atoms.positions
    cell = atoms.cell.array
    # Distance between opposite faces of the cell: volume / area = 1 / |reciprocal row|.
    recip = np.linalg.inv(cell).T
    heights = 1.0 / np.linalg.norm(recip, axis=1)
    reps = [int(np.ceil(cutoff / h)) if p else 0 for h, p in zip(heights, atoms.pbc, strict=True)]
    shifts = np.array(np.meshgrid(*[np.arange(-n, n + 1) for n in reps], indexing="ij"))
    shifts = shifts.reshape(3, -1).T
    images = (pos[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)
    owner = np.tile(np.arange(len(pos)), len(shifts))
    zero = int(np.nonzero(~shifts.any(axis=1))[0][0])
    found = cKDTree(pos).sparse_distance_matrix(cKDTree(images), cutoff, output_type="ndarray")
    i, k = found["i"].astype(np.int64), found["j"].astype(np.int64)
    self_image = (k // len(pos) == zero) & (owner[k] == i)
    i, k = i[~self_image], k[~self_image]
    return i, owner[k], images[k] - pos[i]


def from_clusters(
    clusters: Sequence[tuple[Sequence[str], np.ndarray]], cutoff: float
) -> Environments:
    """Environments from clusters given as (symbols, positions), the absorber first.

    This is the layout of :func:`mlxas.feff.inputs.cluster_around`.  Neighbours beyond
    ``cutoff`` are left out; positions are taken relative to the absorber.
    """
    absorber, counts, vecs, syms = [], [], [], []
    for n, (symbols, positions) in enumerate(clusters):
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) != len(symbols) or len(pos) < 1:
            raise SurrogateInputError(
                f"cluster {n}: positions must be [n_atoms, 3] with one symbol per atom"
            )
        rel = pos[1:] - pos[0]
        d = np.linalg.norm(rel, axis=1)
        keep = np.nonzero(d <= cutoff)[0]
        keep = keep[np.argsort(d[keep], kind="stable")]
        absorber.append(str(symbols[0]))
        counts.append(len(keep))
        vecs.append(rel[keep])
        syms.append(np.asarray(symbols[1:])[keep])
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(counts)
    return Environments(
        np.asarray(absorber),
        offsets,
        np.concatenate(vecs) if vecs else np.zeros((0, 3)),
        np.concatenate(syms) if syms else np.zeros(0, dtype="<U2"),
        float(cutoff),
    )
