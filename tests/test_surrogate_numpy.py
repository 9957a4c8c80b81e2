"""The numpy run of the graph EXAFS surrogate (mlxas.surrogate.numpy_graph) against its
Keras model: same weights, same spectra, on periodic and finite structures with two
elements, for one network and for an ensemble."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.cluster import Octahedron

from mlxas.surrogate.environments import Environments, environments
from mlxas.surrogate.grids import exafs_grid, xanes_grid
from mlxas.surrogate.kinds import GraphNetwork
from mlxas.surrogate.model import Surrogate, _stack
from mlxas.surrogate.numpy_graph import supported

GRID = exafs_grid(0.05, 16.0, 0.05)
PARAMS = {"units": 8, "interactions": 2, "channels": 3, "n_basis": 8, "n_k_basis": 10,
          "n_l_basis": 5, "dl": 0.03}  # fmt: skip


def _env() -> Environments:
    """Sites of a strained, rattled CuNi alloy cell and of a rattled Cu cluster."""
    cell = bulk("Cu", "fcc", a=3.62, cubic=True).repeat(2)
    cell.symbols[[1, 6, 11]] = "Ni"
    cell.set_cell(cell.cell.array @ np.diag([1.02, 0.99, 1.0]), scale_atoms=True)
    cell.rattle(0.04, seed=1)
    cluster = Octahedron("Cu", 5, 1)
    cluster.rattle(0.05, seed=4)
    return Environments.concat(
        [environments(cell, [0, 1, 5, 13], 5.0), environments(cluster, [0, 9, 17], 5.0)]
    )


@pytest.fixture(scope="module")
def ensemble():
    """Two random-weight graph networks of two elements, as a surrogate ensemble, with
    the graph arrays of the sites of :func:`_env` and the Keras outputs there."""
    import keras

    kind = GraphNetwork(GRID, ("Cu", "Ni"), 5.0, PARAMS)
    env = _env()
    x = kind.featurize(env)
    y = np.random.default_rng(0).normal(size=(len(env), len(GRID))).astype("f4")
    nets = []
    for seed in range(2):
        keras.utils.set_random_seed(seed)
        net = kind.build(x, y)
        net.name = f"member_{seed}_graph"
        nets.append(net)
    sur = Surrogate.from_network(_stack(nets, "graph_ensemble"), kind, env, y, 2)
    sur.backend = "keras"
    ref = sur.network_outputs(x)
    sur.backend = "numpy"
    return sur, nets, x, ref


def _rel_err(fast: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Largest difference of each site, relative to the site's largest value."""
    n = len(ref)
    scale = np.abs(ref).reshape(n, -1).max(axis=1)
    assert scale.min() > 0
    return np.abs(fast - ref).reshape(n, -1).max(axis=1) / scale


def test_numpy_and_keras_give_the_same_spectra(ensemble):
    sur, nets, x, ref = ensemble
    assert sur.backend == "numpy"
    fast = sur.network_outputs(x)
    assert fast.shape == ref.shape == (7, 2, len(GRID))
    assert _rel_err(fast, ref).max() < 1e-5
    # One network alone (not nested in an ensemble): member 0 of the Keras output.
    single = Surrogate.from_network(nets[0], sur.kind, _env(), np.zeros((7, len(GRID))), 1)
    assert single.backend == "numpy"
    assert _rel_err(single.network_outputs(x), ref[:, 0]).max() < 1e-5


def test_padding_and_batching_do_not_change_the_numpy_spectra(ensemble):
    """More padding rows and another batch split give the same numbers."""
    from mlxas.surrogate import numpy_graph

    sur, _, x, _ = ensemble
    fg = numpy_graph.fuse(sur.model)
    ref = numpy_graph.predict(fg, x, batch_size=7)
    padded = sur.kind.pad(x, {"species": np.zeros((1, 96)), "pairs": np.zeros((1, 640, 2))})
    assert _rel_err(numpy_graph.predict(fg, padded, batch_size=3), ref).max() < 2e-6


def test_only_graph_exafs_runs_in_numpy():
    assert supported(GraphNetwork(GRID, ("Cu",), 5.0, PARAMS))
    assert not supported(GraphNetwork(xanes_grid(), ("Cu",), 5.0, PARAMS))


def test_graph_pairs_are_every_short_enough_pair():
    """build_graphs' pairs against a plain loop over every node pair of every site: (j, l)
    is a pair when the triangle or the path through the absorber is ≤ the cutoff."""
    from mlxas.surrogate.graphs import GraphSettings, build_graphs

    env = _env()
    cutoff = 4.0
    x = build_graphs(env, GraphSettings(("Cu", "Ni"), 5.0, cutoff, 8))
    for site in range(len(env)):
        _, vec, _ = env.site(site)
        r = np.linalg.norm(vec, axis=1)
        sure, borderline = set(), set()  # borderline: within float32 reach of the cutoff
        for j in range(len(vec)):
            for l_ in range(j + 1, len(vec)):
                rjl = np.linalg.norm(vec[l_] - vec[j])
                shortest = min((r[j] + r[l_] + rjl) / 2, r[j] + r[l_])
                if shortest <= cutoff - 1e-4:
                    sure.add((j, l_))
                elif shortest <= cutoff + 1e-4:
                    borderline.add((j, l_))
        got = {tuple(p) for p in x["pairs"][site].tolist() if p[0] != p[1]}
        assert sure
        assert sure <= got <= sure | borderline
