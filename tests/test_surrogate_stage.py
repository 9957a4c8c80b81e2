"""The surrogate in the simulation stage: predicted sites marked with the model id,
out-of-distribution sites routed to real FEFF8L, chunk files never taken for FEFF's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from ase.cluster import Octahedron

from mlxas.engines.base import EngineError, get_engine
from mlxas.simulation.chunk import chunk_engine, read_chunk
from mlxas.simulation.inputs import build_inputs, input_hash
from mlxas.simulation.runner import run_chunk
from mlxas.surrogate.data import load_results
from mlxas.surrogate.environments import SurrogateInputError, environments
from mlxas.surrogate.feff_runs import feff_engine, feff_items, provenance
from mlxas.surrogate.grids import exafs_grid
from mlxas.surrogate.kinds import GraphNetwork
from mlxas.surrogate.model import Surrogate
from mlxas.surrogate.routing import (
    ROUTED,
    SURROGATE_ENGINE,
    RoutingSettings,
    routing_report,
    site_input_hash,
)
from mlxas.surrogate.stage import run_routed
from mlxas.workflow.layout import Layout

SMALL = {"units": 8, "interactions": 1, "channels": 2, "n_basis": 8, "n_k_basis": 8,
         "n_l_basis": 4, "dl": 0.02}  # fmt: skip
FEFF = {"cards": {"RPATH": 3.0, "NLEGS": 2}, "cluster_radius": 4.0}
GRID = exafs_grid(0.05, 16.0, 0.05)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An untrained graph surrogate of Cu octahedron sites, saved; its OOD statistics
    know the octahedron, not a cell with 10 % shorter bonds."""
    kind = GraphNetwork(GRID, ("Cu",), 4.0, SMALL)
    train_atoms = Octahedron("Cu", 6, 1)
    env = environments(train_atoms, None, 4.0)
    y = np.zeros((len(env), len(GRID)), "f4")
    model = kind.build(kind.featurize(env), y)
    feff = provenance(feff_engine("feff8l", FEFF, edge="K"))
    sur = Surrogate.from_network(model, kind, env, y, feff=feff)
    folder = sur.save(tmp_path_factory.mktemp("store"))
    centre = int(
        np.argmin(np.linalg.norm(train_atoms.positions - train_atoms.positions.mean(0), axis=1))
    )
    squeezed = bulk("Cu", "fcc", a=3.25, cubic=True).repeat(2)  # bonds 10 % short
    return sur, folder, train_atoms, centre, squeezed


def _first_shell(result) -> float:
    k, chi = result.arrays["k"], result.arrays["chi"]
    r_grid = np.linspace(1.0, 4.0, 301)
    w = (k > 3) & (k < 12)
    ft = np.abs((chi[w] * k[w] ** 2) @ np.exp(2j * np.outer(k[w], r_grid)))
    return float(r_grid[np.argmax(ft)])


def test_batch_routing_sends_unknown_sites_to_feff(tmp_path, saved):
    sur, _, train_atoms, centre, squeezed = saved
    items = [("in-a", train_atoms, centre), ("out-a", squeezed, 0)]
    results, routing = run_routed(sur, items, tmp_path, RoutingSettings(None, 1.0), threads=1)
    assert routing.reason.tolist() == ["", "ood"]
    assert [r.item_id for r in results] == ["in-a", "out-a"]
    first, second = results
    assert first.engine == SURROGATE_ENGINE and first.engine_version == sur.model_id
    env = environments(train_atoms, [centre], 4.0)
    assert first.input_hash == site_input_hash(env, 0, sur.model_id)
    np.testing.assert_allclose(first.arrays["k"], GRID.values)
    assert second.ok and second.engine == "feff8l" and second.detail.startswith(f"{ROUTED} ood")
    engine = sur.feff_engine()
    assert second.input_hash == feff_items([items[1]], engine)[0].input_hash
    # FEFF's first shell sits at the squeezed bond length a/√2 = 2.30 Å.
    assert 1.8 < _first_shell(second) < 2.3  # the FT peak sits ~0.2-0.4 Å below R


def test_surrogate_engine_writes_marked_chunks(tmp_path, saved):
    sur, folder, train_atoms, centre, squeezed = saved
    engine = get_engine(
        "surrogate",
        get_engine("surrogate", {"model": "x"}).settings_from_config(
            {"model": str(folder), "max_spread": None, "max_ood": 1.0}, absorber="Cu", edge="K"
        ),
    )
    assert engine.version == sur.model_id
    layout = Layout(tmp_path / "results" / "exp")
    sites = pd.DataFrame({"site_id": ["oct-c", "sq-0", "oct-c2"], "structure_id": ["o", "s", "o"],
                          "source": "cu", "name": "n", "site_index": [centre, 0, centre],
                          "multiplicity": 1})  # fmt: skip
    sim = layout.simulation("cu")
    table = build_inputs(sites, {"o": train_atoms, "s": squeezed}, engine, 3, sim)
    assert table["input_hash"].iloc[0] == input_hash(engine, table["text"].iloc[0])
    for _ in range(2):  # the second run reuses every finished item
        run_chunk(sim, 0, timeout=300, threads=1, progress=False)
        rows = read_chunk(sim.chunk(0))
        assert [r.engine for r in rows] == [SURROGATE_ENGINE, "feff8l", SURROGATE_ENGINE]
        assert rows[0].engine_version == sur.model_id and rows[1].engine_version != sur.model_id
        assert rows[1].detail.startswith(f"{ROUTED} ood") and rows[1].scalars["ood"] > 1.0
        np.testing.assert_array_equal(rows[0].arrays["chi"], rows[2].arrays["chi"])
        assert 1.8 < _first_shell(rows[1]) < 2.3
    assert chunk_engine(sim.chunk(0))[0].name == SURROGATE_ENGINE
    report = routing_report([sim.chunk(0)])
    assert report == {"n_items": 3, "n_surrogate": 2, "n_feff": 1, "n_failed": 0,
                      "reasons": {"ood": 1}, "model_ids": [sur.model_id]}  # fmt: skip
    # Never training data for a surrogate, as if FEFF had written it.
    layout.sites("cu").parent.mkdir(parents=True)
    sites.to_parquet(layout.sites("cu"))
    with pytest.raises(SurrogateInputError, match="written by the surrogate"):
        load_results(layout.root, GRID, 4.0)


def test_engine_settings_are_checked(tmp_path, saved):
    _, folder, *_ = saved
    cls = type(get_engine("surrogate", {"model": "x"}))
    with pytest.raises(EngineError, match="model folder is needed"):
        cls.settings_from_config({}, absorber="Cu", edge="K")
    with pytest.raises(EngineError, match=r"no model\.keras"):
        cls.settings_from_config({"model": str(tmp_path)}, absorber="Cu", edge="K")
    with pytest.raises(EngineError, match="trained on K edges"):
        cls.settings_from_config({"model": str(folder)}, absorber="Cu", edge="L3")
