"""Routing between surrogate and FEFF, and the marking of surrogate rows in chunk files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.cluster import Octahedron

from mlxas.feff.chunk import SiteResult, chunk_summary, read_chunk
from mlxas.surrogate.environments import environments
from mlxas.surrogate.grids import exafs_grid, xanes_grid
from mlxas.surrogate.routing import (
    SURROGATE_ENGINE,
    RoutingSettings,
    from_site_result,
    is_surrogate,
    merge_results,
    relative_spread,
    route,
    site_input_hash,
    surrogate_results,
    write_routed_chunk,
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
    """Surrogate spectra and FEFF rows in one chunk file, in site order; the surrogate rows
    carry engine 'surrogate' and the model id, and the routing report sits beside them."""
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
    feff = [
        from_site_result(
            SiteResult(
                "s1",
                "ok",
                input_hash="f1",
                engine="feff8l",
                engine_version="0.8",
                k=grid.values,
                chi=np.ones(len(grid)),
            )
        )
    ]
    rows = merge_results(["s0", "s1", "s2", "s3"], sur, feff)
    routing = route(np.array([0.01, 0.5, 0.02, 0.03]), None)
    path = tmp_path / "chunks" / "00000.h5"
    write_routed_chunk(path, rows, routing, "model123", card_hash="cards9")
    back = read_chunk(path)
    assert [r.site_id for r in back] == ["s0", "s1", "s2", "s3"]
    assert [is_surrogate(r) for r in back] == [True, False, True, True]
    for r, row in zip([back[0], back[2], back[3]], spectra, strict=True):
        assert r.engine == SURROGATE_ENGINE and r.engine_version == "model123"
        assert r.card_hash == "cards9" and "model123" in r.detail
        x, y = (r.k, r.chi) if grid.target == "exafs" else (r.energy, r.mu)
        np.testing.assert_allclose(x, grid.values)
        np.testing.assert_allclose(y, row)
    assert back[1].engine == "feff8l"
    assert chunk_summary(path)["n_ok"] == 4
    report = json.loads((tmp_path / "chunks" / "00000.routing.json").read_text())
    assert report["n_feff"] == 1 and report["surrogate_rows"] == 3
    assert report["model_id"] == "model123"


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
