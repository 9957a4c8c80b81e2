"""The surrogate stage's batch work: predict, route out-of-distribution sites to real FEFF."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from ase.cluster import Octahedron

from mlxas.ood import fit_ood
from mlxas.surrogate.environments import environments
from mlxas.surrogate.feff_runs import FeffSettings, feff_rows
from mlxas.surrogate.grids import exafs_grid
from mlxas.surrogate.kinds import GraphNetwork
from mlxas.surrogate.model import Surrogate, ood_features
from mlxas.surrogate.routing import SURROGATE_ENGINE, RoutingSettings, site_input_hash
from mlxas.surrogate.stage import run_routed

SMALL = {"units": 8, "interactions": 1, "channels": 2, "n_basis": 8, "n_k_basis": 8,
         "n_l_basis": 4, "dl": 0.02}  # fmt: skip


def test_out_of_distribution_sites_go_to_feff(tmp_path):
    grid = exafs_grid(0.05, 16.0, 0.05)
    kind = GraphNetwork(grid, ("Cu",), 4.0, SMALL)
    train_atoms = Octahedron("Cu", 6, 1)
    env = environments(train_atoms, None, 4.0)
    model = kind.build(kind.featurize(env), np.zeros((len(env), len(grid)), "f4"))
    card = {"card_version": 1, "model_id": "m1", "kind": kind.to_json(),
            "grid": grid.to_json(), "members": 1,
            "ood": fit_ood(ood_features(env, ("Cu",), 4.0))}  # fmt: skip
    sur = Surrogate(model, card)
    squeezed = bulk("Cu", "fcc", a=3.25, cubic=True).repeat(2)  # bonds 10 % short
    centre = int(
        np.argmin(np.linalg.norm(train_atoms.positions - train_atoms.positions.mean(0), axis=1))
    )
    items = [("in-a", train_atoms, centre), ("out-a", squeezed, 0), ("out-b", squeezed, 3)]
    feff = FeffSettings("feff8l", "K", {"RPATH": 3.0, "NLEGS": 2}, "exafs", 4.0, timeout=300)
    results, routing = run_routed(sur, items, feff, tmp_path, RoutingSettings(None, 1.0))
    assert routing.reason.tolist() == ["", "ood", "ood"]
    assert [r.item_id for r in results] == ["in-a", "out-a", "out-b"]
    first = results[0]
    assert first.engine == SURROGATE_ENGINE and first.engine_version == "m1"
    assert first.input_hash == site_input_hash(environments(train_atoms, [centre], 4.0), 0, "m1")
    np.testing.assert_allclose(first.arrays["k"], grid.values)
    assert first.scalars["ood"] <= 1.0
    rows = feff_rows([items[1]], feff)
    for r in results[1:]:
        assert r.ok and r.engine == "feff8l", r.detail
        assert len(r.arrays["chi"]) > 100
    assert results[1].input_hash == rows[0]["input_hash"]
    # FEFF's first shell sits at the squeezed bond length a/√2 = 2.30 Å.
    k, chi = results[1].arrays["k"], results[1].arrays["chi"]
    r_grid = np.linspace(1.0, 4.0, 301)
    w = (k > 3) & (k < 12)
    ft = np.abs((chi[w] * k[w] ** 2) @ np.exp(2j * np.outer(k[w], r_grid)))
    assert 1.8 < r_grid[np.argmax(ft)] < 2.3  # the FT peak sits ~0.2-0.4 Å below R
