"""fcc nanoparticles cut with ASE along (100) and (111) facets, optionally relaxed with EMT.

Shapes and the meaning of ``size``:

``octahedron``            atoms along an edge (eight (111) facets; ``Octahedron(n, 0)``)
``cuboctahedron``         atoms along an edge (``Octahedron(2n-1, cutoff=n-1)``: 13, 55,
                          147 atoms for n = 2, 3, 4)
``truncated_octahedron``  atoms along an edge, all edges equal (``Octahedron(3n-2,
                          cutoff=n-1)``: 38, 201, 586 atoms for n = 2, 3, 4)
``cube``                  (100) layers from the central atom to each face
                          (``FaceCenteredCubic([(1,0,0)], [n])``: 13, 63, 171 atoms)
``tetrahedron``           atoms along an edge (four (111) facets: 4, 10, 20, 35 atoms)
``sphere``                radius in Å around ``center``: an atom (default), an octahedral
                          hole or a tetrahedral hole of the lattice

Unrelaxed clusters keep the bulk geometry, so every first-shell distance is exactly
``a/√2``.  ``relax: emt`` relaxes each cluster with ASE's EMT potential (Cu, Ag, Au, Ni,
Pd, Pt, Al) to ``fmax``, which contracts the surface bonds as in real particles.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, reference_states

from mlxas.errors import ConfigError
from mlxas.structures.checks import Rejection
from mlxas.structures.sources import register_source

__all__ = [
    "CENTERS",
    "SHAPES",
    "NanoparticleSource",
    "fcc_lattice_constant",
    "nanoparticle",
    "nanoparticles",
    "relax",
]

SHAPES = (
    "sphere",
    "octahedron",
    "cuboctahedron",
    "cube",
    "truncated_octahedron",
    "tetrahedron",
)
#: Sphere centres in units of the cubic lattice constant, relative to an atom.
CENTERS = {
    "atom": (0.0, 0.0, 0.0),
    "octahedral_hole": (0.5, 0.0, 0.0),
    "tetrahedral_hole": (0.25, 0.25, 0.25),
}
#: Elements ASE's EMT has parameters for (besides H, C, N, O).
EMT_METALS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")

_TETRA_FACETS = [(1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)]


def fcc_lattice_constant(element: str) -> float:
    """ASE's reference fcc lattice constant for ``element`` (Å); error if not fcc."""
    state = reference_states[atomic_numbers[element]]
    if state is None or state.get("symmetry") != "fcc":
        raise ValueError(f"{element} is not fcc in ASE's reference data; give lattice_constant")
    return float(state["a"])


def nanoparticle(element: str, shape: str, size: float, a: float, center: str = "atom") -> Atoms:
    """One unrelaxed fcc cluster of lattice constant ``a`` (Å), centred at the origin."""
    # ASE's cluster module loads scipy (~1 s); importing it here keeps reading a config fast.
    from ase.cluster import FaceCenteredCubic, Octahedron

    if shape == "octahedron":
        atoms = Octahedron(element, length=_int(size, shape, 2), cutoff=0, latticeconstant=a)
    elif shape == "cuboctahedron":
        n = _int(size, shape, 2)
        atoms = Octahedron(element, length=2 * n - 1, cutoff=n - 1, latticeconstant=a)
    elif shape == "truncated_octahedron":
        # Regular truncation: one third of the edge removed at each vertex.
        n = _int(size, shape, 2)
        atoms = Octahedron(element, length=3 * n - 2, cutoff=n - 1, latticeconstant=a)
    elif shape == "cube":
        n = _int(size, shape, 1)
        atoms = FaceCenteredCubic(element, surfaces=[(1, 0, 0)], layers=[n], latticeconstant=a)
    elif shape == "tetrahedron":
        atoms = _tetrahedron(element, _int(size, shape, 2), a)
    elif shape == "sphere":
        atoms = _sphere(element, float(size), a, center)
    else:
        raise ValueError(f"unknown nanoparticle shape {shape!r}; choose from {SHAPES}")
    if shape != "sphere" and center != "atom":
        raise ValueError(f"{shape}: `center` applies to spheres only")
    atoms = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions)
    atoms.positions -= atoms.positions.mean(axis=0)
    return atoms


def _int(size: float, shape: str, smallest: int) -> int:
    if float(size) != int(size) or int(size) < smallest:
        raise ValueError(f"{shape}: size must be an integer >= {smallest}, got {size:g}")
    return int(size)


def _tetrahedron(element: str, n: int, a: float) -> Atoms:
    """Tetrahedron with ``n`` atoms along an edge, cut by four (111) planes.

    ASE counts layers from the cluster centre; the centroid of an n-edge tetrahedron sits
    at ((n-1)/4)(1,1,1) in lattice units, i.e. on an atom or a hole depending on n mod 4.
    The four opposite (111) planes are placed far out so they cut nothing.
    """
    from ase.cluster import FaceCenteredCubic

    frac = ((n - 1) % 4) / 4
    layers = -(-(n - 1) // 4)
    opposite = [tuple(-c for c in f) for f in _TETRA_FACETS]
    return FaceCenteredCubic(
        element,
        surfaces=_TETRA_FACETS + opposite,
        layers=[layers] * 4 + [3 * layers + 4] * 4,
        latticeconstant=a,
        center=(frac, frac, frac),
    )


def _sphere(element: str, radius: float, a: float, center: str) -> Atoms:
    from ase.build import bulk

    if center not in CENTERS:
        raise ValueError(f"sphere: unknown center {center!r}; choose from {sorted(CENTERS)}")
    reps = int(np.ceil(2 * radius / a)) + 3
    block = bulk(element, "fcc", a=a, cubic=True).repeat((reps, reps, reps))
    middle = block.positions[
        np.argmin(np.linalg.norm(block.positions - block.cell.sum(0) / 2, axis=1))
    ]
    origin = middle + a * np.asarray(CENTERS[center])
    keep = np.linalg.norm(block.positions - origin, axis=1) <= radius + 1e-6
    if not keep.any():
        raise ValueError(f"sphere: radius {radius:g} Å around a {center} holds no atom")
    return Atoms(element * int(keep.sum()), positions=block.positions[keep] - origin)


def relax(atoms: Atoms, method: str, fmax: float, max_steps: int = 2000) -> tuple[Atoms, bool]:
    """Relax a cluster with ``method`` (``emt``) until forces < ``fmax`` (eV/Å).

    Returns the relaxed copy and whether it converged within ``max_steps``.
    """
    from ase.optimize import BFGS

    if method != "emt":
        raise ValueError(f"relax: unknown method {method!r}; choose emt")
    from ase.calculators.emt import EMT

    bad = sorted(set(atoms.get_chemical_symbols()) - set(EMT_METALS))
    if bad:
        raise ValueError(f"relax: EMT has no parameters for {', '.join(bad)}")
    out = atoms.copy()
    out.calc = EMT()
    converged = BFGS(out, logfile=None).run(fmax=fmax, steps=max_steps)
    out.calc = None
    out.positions -= out.positions.mean(axis=0)
    return out, bool(converged)


@register_source
@dataclass(frozen=True)
class NanoparticleSource:
    """A ``kind: nanoparticles`` source: one fcc ``element`` cluster of ``shape`` per
    entry of ``sizes`` (meaning per shape: see the module), lattice constant in Å (None:
    ASE's reference), sphere ``center``, optional ``relax`` (``emt``) to ``fmax`` eV/Å."""

    kind = "nanoparticles"
    name: str
    element: str
    shape: str
    sizes: tuple[float, ...]
    lattice_constant: float | None = None
    center: str = "atom"
    relax: str | None = None
    fmax: float = 0.01

    def elements(self) -> tuple[str, ...]:
        return (self.element,)

    def generate(self, work_dir: Path | None = None) -> Iterator:
        for name, item in nanoparticles(self):
            yield name, None, f"nanoparticles:{name}", item


def nanoparticles(source: NanoparticleSource) -> Iterator[tuple[str, Atoms | Rejection]]:
    """Yield ``(name, atoms)`` for every size of a ``kind: nanoparticles`` source.

    A relaxation that does not converge yields a :class:`Rejection` instead.
    """
    shape, center, method = source.shape, source.center or "atom", source.relax
    try:
        a = source.lattice_constant or fcc_lattice_constant(source.element)
        clusters = [nanoparticle(source.element, shape, size, a, center) for size in source.sizes]
    except ValueError as err:
        raise ConfigError(f"structures: source {source.name!r}: {err}") from None
    for size, atoms in zip(source.sizes, clusters, strict=True):
        name = f"{shape}_{size:g}" if center == "atom" else f"{shape}_{center}_{size:g}"
        if method:
            name += f"_{method}"
            try:
                atoms, ok = relax(atoms, method, source.fmax)
            except ValueError as err:
                raise ConfigError(f"structures: source {source.name!r}: {err}") from None
            if not ok:
                detail = f"{method} relaxation did not reach fmax = {source.fmax} eV/Å"
                yield name, Rejection(f"nanoparticles:{name}", None, "relaxation_failed", detail)
                continue
        yield name, atoms
