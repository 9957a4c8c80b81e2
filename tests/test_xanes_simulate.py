"""FEFF10 XANES of prototype sites through the pipeline's FEFF path (real FEFF10)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mlxas.feff.inputs import build_inputs
from mlxas.xanes.dataset import DatasetSettings, _atoms, _feff_cfg
from mlxas.xanes.features import XanesFeatureSettings, xanes_features
from mlxas.xanes.prototypes import build_structure, catalogue
from mlxas.xanes.simulate import XanesFeffSettings, cluster_radius, fms_atoms, run_xanes, site_input

warnings.filterwarnings("ignore", module="pymatgen")


@pytest.fixture(scope="module")
def mno():
    comp = next(c for c in catalogue(("rock_salt",)).compounds if c.name == "MnO_rock_salt")
    return build_structure(comp)


def test_cards_and_cluster_follow_the_settings(mno):
    st = XanesFeffSettings(fms_radius=4.0, scf_radius=3.0, xanes_kmax=5.0)
    text = site_input(mno, 0, st, "MnO")
    lines = text.splitlines()
    assert "FMS 4.0" in lines and "SCF 3.0" in lines and "XANES 5.0" in lines
    assert "EDGE K" in lines and not any(ln.startswith(("EXAFS", "RPATH")) for ln in lines)
    no_scf = site_input(mno, 0, XanesFeffSettings(scf_radius=None), "x").splitlines()
    assert not any(ln.startswith("SCF") for ln in no_scf)
    n_atoms = lines.index("END") - lines.index("ATOMS") - 2
    assert n_atoms == fms_atoms(mno, 0, cluster_radius(st))
    # Rock salt: 1 + 6 + 12 + 8 atoms within a·√3/2 = 3.85 Å, then 6 more at a = 4.445 Å.
    assert fms_atoms(mno, 0, 4.0) == 27


def test_the_workflow_writes_the_same_input_so_runs_are_reused(tmp_path, mno):
    """build_inputs (the workflow's FEFF-inputs stage) and site_input give one text."""
    st = DatasetSettings(feff=XanesFeffSettings(fms_radius=3.5, scf_radius=None))
    atoms = _atoms(mno, {"structure_id": "s1"})
    sites = pd.DataFrame([{"site_id": "s1-00000", "structure_id": "s1", "site_index": 0}])
    table = build_inputs(
        sites, {"s1": atoms}, _feff_cfg(st), "K", tmp_path / "in.parquet", tmp_path / "c.json"
    )
    assert table.loc[0, "feff_inp"] == site_input(mno, 0, st.feff, "mlxas site s1-00000")


@pytest.mark.slow
def test_feff10_xanes_of_mno_gives_a_normalised_edge_and_is_reused(tmp_path, mno):
    st = XanesFeffSettings(fms_radius=3.0, scf_radius=None, xanes_kmax=5.0)
    text = site_input(mno, 0, st, "MnO test")
    res, cpu = run_xanes(text, "mno", tmp_path / "runs" / "mno", st)
    assert res.ok, (res.reason, res.detail)
    assert cpu > 0.5
    feats = xanes_features([(res.energy, res.mu)], XanesFeatureSettings(), calculated=True)
    # FEFF's Fermi level and the half-step E0 lie close to the Mn K edge (6539 eV).
    assert abs(feats.e0[0] - 6539.0) < 15 and abs(feats.e0[0] - res.e0) < 5
    grid = XanesFeatureSettings().grid
    assert np.mean(feats.norm[0, (grid >= 20) & (grid <= 60)]) == pytest.approx(1.0, abs=0.02)
    again, cpu_again = run_xanes(text, "mno", tmp_path / "runs" / "mno", st)
    assert again.ok and again.seconds == res.seconds and cpu_again == pytest.approx(cpu)
