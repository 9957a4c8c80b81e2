"""Routing between surrogate and FEFF, and the marking of surrogate rows in chunk files."""

from __future__ import annotations

import numpy as np
import pytest
from ase.cluster import Octahedron

from mlxas.simulation.chunk import read_chunk, write_chunk
from mlxas.surrogate.environments import environments
from mlxas.surrogate.grids import exafs_grid, xanes_grid
from mlxas.surrogate.routing import (
    SURROGATE_ENGINE,
    RoutingSettings,
    is_surrogate,
    merge_results,
    relative_spread,
    route,
    routing_report,
    site_input_hash,
    surrogate_results,
)


def test_relative_spread_is_the_rms_ratio():
    mean = np.array([[3.0, 4.0], [1.0, 0.0]])
    std = np.array([[0.3, 0.4], [0.0, 0.5]])
    np.testing.assert_allclose(relative_spread(mean, std), [0.1, 0.5])


def test_route_reasons_and_counts():
    spread = np.array([0.01, 0.30, 0.02, 0.50, np.nan])
    ood = np.array([0.2, 0.5, 3.0, 2.0, 0.1])
    r = route(spread, ood, RoutingSettings(max_spread=0.14, max_ood=1.0))
    assert r.to_feff.tolist() == [False, True, True, True, True]
    assert r.reason.tolist() == ["", "spread", "ood", "spread+ood", "spread"]
    assert r.summary() == {
        "n_sites": 5,
        "n_surrogate": 1,
        "n_feff": 4,
        "max_spread": 0.14,
        "max_ood": 1.0,
        "reasons": {"ood": 1, "spread": 2, "spread+ood": 1},
    }
    # A single network has no spread: only the OOD test applies; thresholds can be off.
    assert route(None, ood).to_feff.tolist() == [False, False, True, True, False]
    assert not route(spread, ood, RoutingSettings(None, None)).to_feff.any()
    with pytest.raises(ValueError, match="different lengths"):
        route(spread, ood[:2])


@pytest.mark.parametrize("grid", [exafs_grid(), xanes_grid()])
def test_surrogate_rows_round_trip_marked(tmp_path, grid):
    """Surrogate spectra through the stage's chunk files: FEFF's array names, engine
    'surrogate' and the model id on every row, the routing measures as scalars."""
    rng = np.random.default_rng(0)
    spectra = rng.normal(size=(3, len(grid)))
    sur = surrogate_results(
        ["s0", "s2", "s3"],
        ["h0", "h2", "h3"],
        spectra,
        grid,
        "model123",
        seconds=1e-4,
        spread=np.array([0.01, 0.02, 0.03]),
    )
    assert sur[1].scalars["spread"] == 0.02 and np.isnan(sur[1].scalars["ood"])
    path = tmp_path / "chunks" / "00000.h5"
    write_chunk(path, sur, tmp_path / "chunks" / "00000.summary.json", "surrogate", {})
    back = read_chunk(path)
    assert [r.item_id for r in back] == ["s0", "s2", "s3"]
    for r, row in zip(back, spectra, strict=True):
        assert is_surrogate(r) and r.engine == SURROGATE_ENGINE
        assert r.engine_version == "model123" and "model123" in r.detail
        names = ("k", "chi") if grid.target == "exafs" else ("energy", "mu")
        assert set(r.arrays) == set(names)
        np.testing.assert_allclose(r.arrays[names[0]], grid.values)
        np.testing.assert_allclose(r.arrays[names[1]], row)
    assert [r.scalars["spread"] for r in back] == [0.01, 0.02, 0.03]
    report = routing_report([path])
    assert report["n_surrogate"] == 3 and report["n_feff"] == 0
    assert report["model_ids"] == ["model123"]


def test_merge_refuses_duplicates_and_gaps():
    grid = exafs_grid()
    a = surrogate_results(["s0"], ["h"], np.zeros((1, len(grid))), grid, "m")
    with pytest.raises(ValueError, match="both a surrogate and a FEFF result"):
        merge_results(["s0"], a, a)
    with pytest.raises(ValueError, match="missing"):
        merge_results(["s0", "s1"], a, [])
    with pytest.raises(ValueError, match="do not match"):
        surrogate_results(["s0", "s1"], ["h", "h"], np.zeros((1, len(grid))), grid, "m")


def test_input_hash_follows_the_environment_and_the_model():
    atoms = Octahedron("Cu", 4, 1)
    env = environments(atoms, [0, 0, 5], 5.0)
    assert site_input_hash(env, 0, "m") == site_input_hash(env, 1, "m")
    assert site_input_hash(env, 0, "m") != site_input_hash(env, 2, "m")
    assert site_input_hash(env, 0, "m") != site_input_hash(env, 0, "other")
