"""The dataset stages on one small prototype: plan (structures, sites, labels), FEFF, gather."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
from ase.io import read

from mlxas.provenance import structure_hash
from mlxas.xanes.dataset import DatasetSettings, gather, plan, run_feff
from mlxas.xanes.features import XanesFeatureSettings
from mlxas.xanes.simulate import XanesFeffSettings
from mlxas.xanes.variants import VariantSettings

warnings.filterwarnings("ignore", module="pymatgen")


def _settings(snapshots: int) -> DatasetSettings:
    return DatasetSettings(
        snapshots={"linear": snapshots},
        prototypes=("cuprite",),
        variants=VariantSettings(min_width=6.0),
        feff=XanesFeffSettings(fms_radius=3.0, scf_radius=None),
        chunk_size=2,
    )


def test_plan_writes_labelled_sites_with_structure_ids(tmp_path):
    sites = plan(_settings(2), tmp_path, progress=False)
    # Cu2O: the ideal crystal (one Cu role) and two thermal snapshots, one Cu site each.
    assert len(sites) == 3 and list(sites["snapshot"]) == ["ideal", "thermal", "thermal"]
    assert set(sites["geometry"]) == {"linear"} and set(sites["cn"]) == {2}
    assert set(sites["oxidation_state"]) == {1.0} and set(sites["element"]) == {"Cu"}
    assert sites.loc[0, "r"] == pytest.approx(4.2696 * 3**0.5 / 4, abs=1e-4)
    structures = read(tmp_path / "structures/prototypes/structures.extxyz", index=":")
    ids = {a.info["structure_id"] for a in structures}
    for a in structures:
        sid = structure_hash(a.get_chemical_symbols(), a.positions, a.cell, a.pbc)
        assert sid == a.info["structure_id"] and a.info["compound"] == "Cu2O_cuprite"
    for row in sites.itertuples():
        assert row.structure_id in ids and row.site_id == f"{row.structure_id}-{row.site_index:05d}"
    # Same settings, same seeds: the same snapshots and sites.
    again = plan(_settings(2), tmp_path / "again", progress=False)
    assert list(again["site_id"]) == list(sites["site_id"])
    meta = json.loads((tmp_path / "sites/prototypes.json").read_text())
    assert meta["n_sites"] == 3 and meta["label_cpu_s"] >= 0


@pytest.mark.slow
def test_feff_and_gather_give_features_and_labels(tmp_path):
    st = _settings(0)
    plan(st, tmp_path, progress=False)
    record = run_feff(st, tmp_path, threads=1)
    session = record["sessions"][-1]
    assert session["chunks"] == [0] and session["runs_finished"] == 1
    assert session["feff_cpu_s"] > 0.5
    path = gather(XanesFeatureSettings(), tmp_path)
    assert gather(XanesFeatureSettings(), tmp_path / ".", from_runs=True) == path
    with h5py.File(path) as h5:
        assert h5["norm"].shape == (1, len(XanesFeatureSettings().grid))
        assert h5["meta/geometry"][0].decode() == "linear"
        assert h5["labels/cn"][0] == 2
        grid = h5["grid"][:]
        post = (grid >= 20) & (grid <= 60)
        assert np.mean(h5["norm"][0][post]) == pytest.approx(1.0, abs=0.02)
    table = pd.read_parquet(tmp_path / "feff/prototypes/inputs.parquet")
    assert "FMS 3.0" in table.loc[0, "feff_inp"] and "XANES 5.0" in table.loc[0, "feff_inp"]
