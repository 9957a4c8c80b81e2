"""Low-energy starting structures for metal clusters of a given size.

A global-minimum search for a 150-atom cluster cannot be exhaustive.  mlxas builds the
structural motifs that dominate metal clusters of this size with ASE's cluster builders
(Mackay icosahedra, Ino/Marks decahedra, truncated octahedra), trims each to exactly
``n_atoms`` by removing its least-coordinated atoms, relaxes them all, and then improves
the best few either by simulated annealing (Langevin MD from a high temperature down to
a few K, then a quench) or by ASE's basin hopping.  The lowest structure found is the
start of the production MD.  Every random choice is drawn from a seeded generator, so
the result is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units

__all__ = [
    "SearchResult",
    "anneal",
    "basin_hopping",
    "global_minimum",
    "motif_candidates",
    "relax",
    "trim",
]

#: Bonded neighbours are closer than this many nearest-neighbour distances.
_BOND_FACTOR = 1.2


@dataclass
class SearchResult:
    """The lowest structure found and how it was found."""

    atoms: Atoms
    energy: float  # eV
    motif: str
    log: list[dict] = field(default_factory=list)


def trim(atoms: Atoms, n_atoms: int, d_nn: float) -> Atoms:
    """Remove atoms one by one, always the least coordinated, until ``n_atoms`` remain.

    Ties go to the atom farthest from the centroid, then to the higher index, so the
    result is deterministic.  Removing low-coordinated atoms first strips vertices,
    then edges, then facets, which keeps the cluster compact.  ``d_nn`` is the
    nearest-neighbour distance (Å); atoms closer than 1.2 ``d_nn`` count as bonded.
    """
    if n_atoms > len(atoms):
        raise ValueError(f"cannot trim {len(atoms)} atoms to {n_atoms}")
    pos = atoms.positions
    bond = _BOND_FACTOR * d_nn
    d2 = np.sum((pos[:, None, :] - pos[None, :, :]) ** 2, axis=-1)
    adjacency = d2 < bond * bond
    np.fill_diagonal(adjacency, False)
    cn = adjacency.sum(axis=1)
    alive = np.ones(len(atoms), dtype=bool)
    index = np.arange(len(atoms))
    for _ in range(len(atoms) - n_atoms):
        idx = index[alive]
        centre = pos[idx].mean(axis=0)
        dist = np.round(np.linalg.norm(pos[idx] - centre, axis=1), 6)
        # lexsort: the last key is primary — lowest CN, then farthest, then highest index
        k = idx[np.lexsort((-idx, -dist, cn[idx]))[0]]
        alive[k] = False
        cn -= adjacency[k]
    out = atoms[alive]
    out.positions -= out.positions.mean(axis=0)
    return out


def motif_candidates(
    element: str, n_atoms: int, a: float, max_extra: float = 0.3
) -> list[tuple[str, Atoms]]:
    """Icosahedra, decahedra and truncated octahedra trimmed to ``n_atoms`` atoms.

    For each family, every closed-shell size between ``n_atoms`` and
    ``(1 + max_extra) · n_atoms`` is used, and at least the smallest one above
    ``n_atoms``.  ``a`` is the fcc lattice constant (Å).
    """
    from ase.cluster import Decahedron, Icosahedron, Octahedron

    limit = int(np.ceil((1 + max_extra) * n_atoms))
    families: dict[str, list[tuple[str, Atoms]]] = {"icosahedron": [], "decahedron": [], "fcc": []}

    def add(family: str, name: str, cluster: Atoms) -> bool:
        """Record a large-enough cluster; True once it is past the size limit."""
        if len(cluster) >= n_atoms:
            atoms = Atoms(cluster.get_chemical_symbols(), positions=cluster.positions)
            families[family].append((name, atoms))
        return len(cluster) > limit

    for shells in range(1, 30):
        if add("icosahedron", f"icosahedron({shells})", Icosahedron(element, shells, a)):
            break
    # Sizes grow with every index, so each loop stops at the first cluster past the limit.
    for r in range(0, 6):
        for p in range(1, 30):
            # Long rods (q ≫ p) are never competitive; skip them.
            for q in range(1, max(p, 2) + 5):
                cluster = Decahedron(element, p, q, r, a)
                last = add("decahedron", f"decahedron({p},{q},{r})", cluster)
                if last:
                    break
            if last and q == 1:
                break
    for cut in range(0, 30):
        for length in range(2 * cut + 1, 60):
            last = add("fcc", f"octahedron({length},{cut})", Octahedron(element, length, cut, a))
            if last:
                break
        if last and length == 2 * cut + 1:
            break
    for centre in ("atom", "octahedral", "tetrahedral"):
        families["fcc"].append((f"fcc_sphere({centre})", _fcc_sphere(element, n_atoms, a, centre)))
    out = []
    d_nn = a / np.sqrt(2.0)
    for members in families.values():
        if not members:
            continue
        members.sort(key=lambda item: (len(item[1]), item[0]))
        smallest = len(members[0][1])
        for name, atoms in members:
            if len(atoms) <= max(limit, smallest):
                out.append((f"{name}[{len(atoms)}]", trim(atoms, n_atoms, d_nn)))
    return out


def _fcc_sphere(element: str, n_atoms: int, a: float, centre: str) -> Atoms:
    """The ``n_atoms`` fcc lattice sites nearest to an atom or to an interstitial hole."""
    offset = {"atom": (0.0, 0.0, 0.0), "octahedral": (0.5, 0.0, 0.0), "tetrahedral": (0.25,) * 3}
    reps = int(np.ceil((3 * n_atoms / (16 * np.pi)) ** (1 / 3))) + 2  # 4 atoms per a³
    grid = np.arange(-reps, reps + 1)
    cells = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    sites = (cells + basis).reshape(-1, 3) - np.asarray(offset[centre])
    dist = np.round(np.linalg.norm(sites, axis=1), 8)
    # Nearest first; ties (one shell) broken by coordinates so the choice is reproducible.
    order = np.lexsort((sites[:, 2], sites[:, 1], sites[:, 0], dist))
    return Atoms(element * n_atoms, positions=sites[order[:n_atoms]] * a)


def relax(atoms: Atoms, fmax: float = 0.01, max_steps: int = 3000) -> float:
    """Local minimisation with FIRE, in place; returns the energy (eV)."""
    from ase.optimize import FIRE

    with FIRE(atoms, logfile=None) as opt:
        opt.run(fmax=fmax, steps=max_steps)
    return float(atoms.get_potential_energy())


def anneal(
    atoms: Atoms,
    temperature: float,
    time_ps: float,
    rng: np.random.Generator,
    timestep_fs: float = 2.0,
    final_temperature: float = 10.0,
) -> float:
    """Simulated annealing in place, then a quench; returns the relaxed energy (eV).

    Langevin dynamics holds ``temperature`` (K) for the first quarter of ``time_ps``,
    cools linearly to ``final_temperature`` over the rest, and FIRE relaxes the result.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    n_steps = max(round(time_ps * 1000.0 / timestep_fs), 1)
    hold = n_steps // 4
    thermalize_momenta(atoms, temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature,
        friction=0.01 / units.fs,
        fixcm=False,
        rng=rng,
    )
    chunk = 100
    done = 0
    while done < n_steps:
        k = min(chunk, n_steps - done)
        if done >= hold:
            frac = (done - hold) / max(n_steps - hold, 1)
            dyn.set_temperature(
                temperature_K=temperature + frac * (final_temperature - temperature)
            )
        dyn.run(k)
        done += k
    atoms.set_momenta(np.zeros((len(atoms), 3)))
    atoms.positions -= atoms.positions.mean(axis=0)
    return relax(atoms)


def basin_hopping(
    atoms: Atoms, steps: int, seed: int, temperature: float = 1000.0, dr: float = 0.3
) -> float:
    """ASE's basin hopping (Wales & Doye 1997) in place; returns the lowest energy (eV).

    ASE draws its random moves from NumPy's global generator; it is seeded here and
    restored afterwards so the run is reproducible and leaves the caller's state alone.
    ``temperature`` (K) sets the Metropolis acceptance of hops, ``dr`` (Å) the move size.
    """
    from ase.optimize import FIRE
    from ase.optimize.basin import BasinHopping

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        bh = BasinHopping(
            atoms,
            temperature=temperature * units.kB,
            optimizer=FIRE,
            fmax=0.01,
            dr=dr,
            logfile=None,
            trajectory=None,
            optimizer_logfile=None,
            local_minima_trajectory=None,
        )
        bh.run(steps)
        energy, best = bh.get_minimum()
    finally:
        np.random.set_state(state)
    atoms.positions = best.positions - best.positions.mean(axis=0)
    return float(energy)


def global_minimum(
    element: str,
    n_atoms: int,
    a: float,
    make_calculator: Callable[[], object],
    method: str = "anneal",
    seed: int = 0,
    n_refine: int = 3,
    anneal_temperature: float = 700.0,
    anneal_time: float = 20.0,
    basin_hopping_steps: int = 50,
) -> SearchResult:
    """Lowest-energy ``element``\\ :sub:`n_atoms` structure found from the motif candidates.

    ``method`` is ``"anneal"`` (simulated annealing, ``anneal_temperature`` K for
    ``anneal_time`` ps) or ``"basin_hopping"`` (``basin_hopping_steps`` hops); it is
    applied to the ``n_refine`` lowest relaxed candidates.
    """
    if method not in ("anneal", "basin_hopping"):
        raise ValueError(f"unknown global-minimum method {method!r}")
    log: list[dict] = []
    relaxed = []
    for name, atoms in motif_candidates(element, n_atoms, a):
        atoms.calc = make_calculator()
        energy = relax(atoms)
        relaxed.append((energy, name, atoms))
        log.append({"stage": "relax", "motif": name, "energy": energy})
    if not relaxed:
        raise ValueError(f"no cluster motif with at least {n_atoms} atoms")
    relaxed.sort(key=lambda item: (item[0], item[1]))
    # Different parents often trim and relax to the same cluster; refine each only once.
    unique = [relaxed[0]]
    for item in relaxed[1:]:
        if item[0] - unique[-1][0] > 1e-6:
            unique.append(item)
    relaxed = unique
    best = relaxed[0]
    rng = np.random.default_rng(seed)
    for k, (_, name, atoms) in enumerate(relaxed[:n_refine]):
        trial = atoms.copy()
        trial.calc = make_calculator()
        if method == "anneal":
            energy = anneal(trial, anneal_temperature, anneal_time, rng)
        else:
            energy = basin_hopping(trial, basin_hopping_steps, seed + k)
        log.append({"stage": method, "motif": name, "energy": energy})
        if energy < best[0]:
            best = (energy, name, trial)
    energy, name, atoms = best
    out = atoms.copy()
    out.calc = None
    out.arrays.pop("momenta", None)
    return SearchResult(out, float(energy), name, log)
