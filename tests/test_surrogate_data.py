"""Surrogate training data read from a real (tiny) workflow run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlxas.feff.inputs import cluster_around
from mlxas.simulation.chunk import read_chunk
from mlxas.structures.index import read_structures
from mlxas.surrogate.data import grouped_split, load_results
from mlxas.surrogate.environments import SurrogateInputError
from mlxas.surrogate.grids import exafs_grid
from test_surrogate_descriptors import canonical


@pytest.mark.slow
def test_load_results_joins_sites_structures_and_feff(tiny_experiment):
    root = tiny_experiment / "results" / "tiny"
    grid = exafs_grid()
    data = load_results(root, grid, 4.5)
    chunks = {
        r.item_id: r for p in sorted(root.glob("simulation/*/chunks/*.h5")) for r in read_chunk(p)
    }
    ok = {s for s, r in chunks.items() if r.ok}
    assert set(data.sites["site_id"]) == ok and len(data) == len(ok) > 4
    assert data.feff["engine"] == "feff8l" and data.feff["settings"]["cluster_radius"] > 0
    structures = {
        str(a.info["structure_id"]): a
        for p in root.glob("structures/*/structures.extxyz")
        for a in read_structures(p)
    }
    sites = pd.concat([pd.read_parquet(p) for p in root.glob("sites/*.parquet")])
    for i in (0, len(data) - 1):
        row = data.sites.iloc[i]
        feff = chunks[row["site_id"]]
        want = np.interp(grid.values, feff.arrays["k"], feff.arrays["chi"])
        np.testing.assert_allclose(data.spectra[i], want, rtol=1e-6, atol=1e-7)
        assert row["input_hash"] == feff.input_hash and row["engine"] == feff.engine
        index = int(sites.set_index("site_id").loc[row["site_id"], "site_index"])
        syms, pos = cluster_around(structures[row["structure_id"]], index, 4.5)
        absorber, vec, sym = data.env.site(i)
        assert absorber == syms[0]
        want_sym, want_vec = canonical(syms[1:], pos[1:])
        got_sym, got_vec = canonical(sym, vec)
        assert got_sym == want_sym
        np.testing.assert_allclose(got_vec, want_vec, atol=1e-9)
    split = grouped_split(data.sites["structure_id"].to_numpy(), (0.5, 0.25, 0.25), seed=1)
    for _, s in pd.Series(split).groupby(data.sites["structure_id"].to_numpy()):
        assert s.nunique() == 1  # a structure never spans two splits


def test_missing_tables_are_named(tmp_path):
    with pytest.raises(SurrogateInputError, match="no site tables"):
        load_results(tmp_path, exafs_grid(), 5.0)
    (tmp_path / "sites").mkdir()
    pd.DataFrame({"site_id": ["a-00000"], "structure_id": ["a"], "source": ["s"],
                  "name": ["n"], "site_index": [0], "multiplicity": [1]}).to_parquet(
        tmp_path / "sites" / "s.parquet")  # fmt: skip
    with pytest.raises(SurrogateInputError, match="no chunk files"):
        load_results(tmp_path, exafs_grid(), 5.0)
