"""fcc nanoparticles cut with ASE's cluster builders along (100) and (111) facets."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from ase import Atoms
from ase.cluster import FaceCenteredCubic, Octahedron
from ase.data import atomic_numbers, reference_states

__all__ = ["fcc_lattice_constant", "nanoparticle", "nanoparticles"]

SHAPES = ("sphere", "octahedron", "cuboctahedron", "cube", "truncated_octahedron")


def fcc_lattice_constant(element: str) -> float:
    """ASE's reference fcc lattice constant for ``element`` (Å); error if not fcc."""
    state = reference_states[atomic_numbers[element]]
    if state is None or state.get("symmetry") != "fcc":
        raise ValueError(f"{element} is not fcc in ASE's reference data; give lattice_constant")
    return float(state["a"])


def nanoparticle(element: str, shape: str, size: float, a: float) -> Atoms:
    """One fcc cluster, centred at the origin.

    ``size`` is the number of atoms along an edge for the octahedral family, the number
    of layers for a cube, and the radius in Å for a sphere.
    """
    if shape == "octahedron":
        atoms = Octahedron(element, length=_int(size, shape), cutoff=0, latticeconstant=a)
    elif shape == "cuboctahedron":
        # A (2c+1)-edge octahedron truncated by c layers at each vertex is a cuboctahedron.
        c = _int(size, shape)
        atoms = Octahedron(element, length=2 * c + 1, cutoff=c, latticeconstant=a)
    elif shape == "truncated_octahedron":
        # Regular truncation: one third of the edge removed at each vertex.
        n = _int(size, shape)
        length = 3 * n - 2
        atoms = Octahedron(element, length=length, cutoff=n - 1, latticeconstant=a)
    elif shape == "cube":
        n = _int(size, shape)
        atoms = FaceCenteredCubic(element, surfaces=[(1, 0, 0)], layers=[n], latticeconstant=a)
    elif shape == "sphere":
        atoms = _sphere(element, float(size), a)
    else:
        raise ValueError(f"unknown nanoparticle shape {shape!r}; choose from {SHAPES}")
    atoms.set_cell(None)
    atoms.set_pbc(False)
    atoms.positions -= atoms.positions.mean(axis=0)
    return atoms


def _int(size: float, shape: str) -> int:
    if float(size) != int(size) or int(size) < 1:
        raise ValueError(f"{shape}: size must be a positive integer, got {size}")
    return int(size)


def _sphere(element: str, radius: float, a: float) -> Atoms:
    from ase.build import bulk

    reps = int(np.ceil(2 * radius / a)) + 2
    block = bulk(element, "fcc", a=a, cubic=True).repeat((reps, reps, reps))
    # Centre on an atom so the sphere keeps the full Oh symmetry of the lattice.
    centre = block.positions[
        np.argmin(np.linalg.norm(block.positions - block.cell.sum(0) / 2, axis=1))
    ]
    keep = np.linalg.norm(block.positions - centre, axis=1) <= radius + 1e-6
    return Atoms(element * int(keep.sum()), positions=block.positions[keep] - centre)


def nanoparticles(spec: dict) -> Iterator[tuple[str, Atoms]]:
    """Yield ``(name, atoms)`` for every size of a ``kind: nanoparticles`` source."""
    a = spec.get("lattice_constant") or fcc_lattice_constant(spec["element"])
    for size in spec["sizes"]:
        atoms = nanoparticle(spec["element"], spec["shape"], size, a)
        yield f"{spec['shape']}_{size:g}", atoms
