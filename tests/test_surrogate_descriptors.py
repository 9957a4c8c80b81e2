"""Site environments and the G2/G4 symmetry functions of the surrogate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.build import bulk
from ase.cluster import Octahedron
from scipy.spatial.transform import Rotation

from mlxas.feff.inputs import cluster_around
from mlxas.surrogate.descriptors import (
    SymmetrySettings,
    cutoff_function,
    descriptor_names,
    descriptors,
)
from mlxas.surrogate.environments import SurrogateInputError, environments, from_clusters


def _rattled_cluster(seed: int = 0):
    atoms = Octahedron("Cu", 5, 1)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _alloy_cluster():
    atoms = _rattled_cluster()
    symbols = atoms.get_chemical_symbols()
    for i in range(0, len(atoms), 3):
        symbols[i] = "Ni"
    atoms.set_chemical_symbols(symbols)
    return atoms


SETTINGS = SymmetrySettings(elements=("Cu", "Ni"), cutoff=6.0, g4_cutoff=4.5)


def canonical(symbols, vectors):
    """Neighbours in an order fixed by their geometry (distance, then x, y, z)."""
    v = np.asarray(vectors)
    order = np.lexsort((v[:, 2].round(9), v[:, 1].round(9), v[:, 0].round(9),
                        np.linalg.norm(v, axis=1).round(9)))  # fmt: skip
    return [str(s) for s in np.asarray(symbols)[order]], v[order]


STRUCTURES = {
    "rattled cluster": _rattled_cluster(),
    "ideal cluster (ties)": Octahedron("Cu", 5, 1),
    "rattled periodic cell": bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2),
    "primitive cell (images of one atom)": bulk("Cu", "fcc", a=3.6),
    "rock salt": bulk("NiO", "rocksalt", a=4.18, cubic=True),
}
STRUCTURES["rattled periodic cell"].rattle(0.03, seed=3)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_environments_are_the_feff_clusters(name):
    """The surrogate sees exactly the atoms and positions that feff.inp holds."""
    atoms = STRUCTURES[name]
    sites = [i for i in (0, 5, 11) if i < len(atoms)]
    env = environments(atoms, sites, 7.0)
    for n, i in enumerate(sites):
        syms, pos = cluster_around(atoms, i, 7.0)
        absorber, vec, sym = env.site(n)
        assert absorber == syms[0]
        want_sym, want_vec = canonical(syms[1:], pos[1:])
        got_sym, got_vec = canonical(sym, vec)
        assert got_sym == want_sym
        np.testing.assert_allclose(got_vec, want_vec, atol=1e-10)
        d = np.linalg.norm(vec, axis=1)
        assert np.all(np.diff(d) >= -1e-12)  # sorted by distance


def test_from_clusters_matches_structure():
    atoms = _rattled_cluster()
    clusters = [cluster_around(atoms, i, 6.0) for i in (0, 3)]
    a, b = from_clusters(clusters, 6.0), environments(atoms, [0, 3], 6.0)
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-12)
    assert a.counts.tolist() == b.counts.tolist()


def test_hand_computed_three_atom_cluster():
    """G2 and G4 of an absorber with two neighbours, computed term by term by hand."""
    env = from_clusters([(["Cu", "Cu", "Ni"], np.array([[0, 0, 0], [2.0, 0, 0], [0, 2.5, 0]]))], 6)
    s = SymmetrySettings(
        elements=("Cu", "Ni"),
        cutoff=6.0,
        g2_centres=(2.0, 2.5),
        g2_eta=1.0,
        g4_cutoff=4.5,
        g4_eta=(0.01,),
        g4_zeta=(1.0, 2.0),
        g4_lambda=(-1.0, 1.0),
    )

    def fc(r, rc):
        return 0.5 * (math.cos(math.pi * r / rc) + 1.0)

    g = descriptors(env, s)[0]
    names = descriptor_names(s)
    assert len(g) == len(names) == s.size == 2 * 2 + 3 * 4
    value = dict(zip(names, g, strict=True))
    # G2: only the Cu neighbour at 2.0 Å is Cu, only the one at 2.5 Å is Ni.
    assert value["G2[Cu, Rs=2]"] == pytest.approx(fc(2.0, 6.0))
    assert value["G2[Cu, Rs=2.5]"] == pytest.approx(math.exp(-0.25) * fc(2.0, 6.0))
    assert value["G2[Ni, Rs=2]"] == pytest.approx(math.exp(-0.25) * fc(2.5, 6.0))
    assert value["G2[Ni, Rs=2.5]"] == pytest.approx(fc(2.5, 6.0))
    # G4: one Cu–Ni pair at a right angle (cos θ = 0), r_jl = √(4 + 6.25).
    rjl = math.sqrt(4.0 + 6.25)
    radial = math.exp(-0.01 * (4.0 + 6.25 + rjl**2)) * fc(2.0, 4.5) * fc(2.5, 4.5) * fc(rjl, 4.5)
    for zeta in (1.0, 2.0):
        for lam in (-1.0, 1.0):
            key = f"G4[Cu-Ni, eta=0.01, zeta={zeta:g}, lambda={lam:+g}]"
            assert value[key] == pytest.approx(2 ** (1 - zeta) * radial)
            assert value[key.replace("Cu-Ni", "Cu-Cu")] == 0.0
            assert value[key.replace("Cu-Ni", "Ni-Ni")] == 0.0


def test_g4_angle_dependence():
    """λ = +1 favours small angles, λ = −1 large ones: (1 + λ cos θ)^ζ."""
    s = SymmetrySettings(elements=("Cu",), g2_centres=(2.5,), g4_eta=(0.0,), g4_zeta=(1.0,))
    d = 2.5
    bent = [[0, 0, 0], [d, 0, 0], [d * math.cos(1.0), d * math.sin(1.0), 0]]
    env = from_clusters([(["Cu"] * 3, np.array(bent))], 6.0)
    g4 = descriptors(env, s)[0, 1:]
    fc3 = cutoff_function(np.array([d, d, 2 * d * math.sin(0.5)]), 4.5).prod()
    np.testing.assert_allclose(g4, [(1 - math.cos(1.0)) * fc3, (1 + math.cos(1.0)) * fc3])


def _permuted(atoms, seed):
    perm = np.random.default_rng(seed).permutation(len(atoms))
    return atoms[perm], np.argsort(perm)


def test_invariance_rotation_translation_permutation():
    atoms = _alloy_cluster()
    sites = np.arange(0, len(atoms), 7)
    ref = descriptors(environments(atoms, sites, 6.0), SETTINGS)
    moved = atoms.copy()
    moved.positions = Rotation.random(random_state=1).apply(atoms.positions) + np.array(
        [3, -7.5, 1.2]
    )
    np.testing.assert_allclose(
        descriptors(environments(moved, sites, 6.0), SETTINGS), ref, rtol=1e-9, atol=1e-12
    )
    perm_atoms, where = _permuted(atoms, 2)
    np.testing.assert_allclose(
        descriptors(environments(perm_atoms, where[sites], 6.0), SETTINGS),
        ref,
        rtol=1e-9,
        atol=1e-12,
    )
    # And the descriptor is not blind: another site's vector differs.
    assert not np.allclose(ref[0], ref[1])


def test_cutoff_function_is_smooth_at_the_cutoff():
    r = np.array([0.0, 3.0, 6.0, 6.5])
    np.testing.assert_allclose(cutoff_function(r, 6.0), [1.0, 0.5, 0.0, 0.0], atol=1e-15)


def test_refusals():
    atoms = _alloy_cluster()
    with pytest.raises(SurrogateInputError, match="'Ni' has no descriptor block"):
        descriptors(environments(atoms, [0, 1, 2], 6.0), SymmetrySettings(elements=("Cu",)))
    with pytest.raises(SurrogateInputError, match="cut at 4 Å"):
        descriptors(environments(atoms, [0], 4.0), SETTINGS)
    with pytest.raises(SurrogateInputError, match="outside the structure"):
        environments(atoms, [len(atoms)], 6.0)
    with pytest.raises(SurrogateInputError, match="positive"):
        environments(atoms, [0], 0.0)


def test_fcc_shells_from_crystal_geometry():
    """G2 and G4 of a site of bulk fcc Cu from the known shells of the lattice: 12
    neighbours at a/√2, 6 at a, 24 at a·√(3/2) inside 5 Å; among the 12 nearest (a
    cuboctahedron) 24 pairs are 60° apart at a/√2 from each other."""

    a = 3.61
    env = environments(bulk("Cu", "fcc", a=a), [0], 5.0)
    s = SymmetrySettings(
        elements=("Cu",),
        cutoff=5.0,
        g2_centres=(2.5, 3.6, 4.4),
        g2_eta=4.0,
        g4_cutoff=3.0,
        g4_eta=(0.02,),
        g4_zeta=(1.0, 4.0),
        g4_lambda=(-1.0, 1.0),
    )
    value = dict(zip(descriptor_names(s), descriptors(env, s)[0], strict=True))
    shells = [(12, a / math.sqrt(2)), (6, a), (24, a * math.sqrt(1.5))]
    for rs in s.g2_centres:
        want = sum(n * math.exp(-4.0 * (r - rs) ** 2) * cutoff_function(r, 5.0) for n, r in shells)
        assert value[f"G2[Cu, Rs={rs:g}]"] == pytest.approx(want, rel=1e-9)
    d = a / math.sqrt(2)  # only first-shell pairs 60° apart lie within 3 Å of each other
    radial = math.exp(-0.02 * 3 * d**2) * float(cutoff_function(d, 3.0)) ** 3
    for zeta in (1.0, 4.0):
        for lam in (-1.0, 1.0):
            want = 2 ** (1 - zeta) * 24 * (1 + lam * 0.5) ** zeta * radial
            key = f"G4[Cu-Cu, eta=0.02, zeta={zeta:g}, lambda={lam:+g}]"
            assert value[key] == pytest.approx(want, rel=1e-9)
