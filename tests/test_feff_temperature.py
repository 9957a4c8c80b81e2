"""The per-structure DEBYE card: what a structure brings to its feff.inp (through the FEFF
engine's input, as the inputs stage writes it), and real FEFF8L runs of a Cu bulk site at
10 K and 600 K (damping change and FEFF's own sigma²)."""

from __future__ import annotations

import numpy as np
import pytest

from mlxas.engines import ItemInput
from mlxas.engines.feff import Feff8LEngine
from mlxas.feff.cards import merged_cards
from mlxas.feff.temperature import read_path_sigma2, structure_cards
from mlxas.sites.shells import ShellSettings, shell_labels
from mlxas.structures.crystal import crystal_structures

A_CU = 3.61
CONFIG_CARDS = {"RPATH": 2.7, "NLEGS": 2, "DEBYE": [200, 315]}  # first shell only


def cu_at(temperatures, model="debye_card", **extra):
    spec = {
        "name": "cu",
        "prototype": "fcc",
        "species": ["Cu"],
        "a": A_CU,
        "temperature": {"values": list(temperatures), "model": model, **extra},
    }
    return [atoms for _, atoms in crystal_structures(spec)]


def test_structure_cards_override_remove_or_leave_the_config_card():
    (cold,) = cu_at([10], debye_temperature=315)
    assert structure_cards(cold) == {"DEBYE": [10, 315]}
    cards = merged_cards("feff8l", "K", {**CONFIG_CARDS, **structure_cards(cold)})
    assert cards["DEBYE"] == [10, 315]
    (snap,) = cu_at([300], model="einstein", snapshots=1)
    cards = merged_cards("feff8l", "K", {**CONFIG_CARDS, **structure_cards(snap)})
    assert "DEBYE" not in cards  # disorder is in the positions: no double counting
    plain = cold.copy()
    plain.info = {}
    assert structure_cards(plain) == {}
    bad = cold.copy()
    bad.info["temperature"] = 0.0
    with pytest.raises(ValueError, match="T > 0"):
        structure_cards(bad)


def engine() -> Feff8LEngine:
    section = {"cards": CONFIG_CARDS, "cluster_radius": 5.0}
    return Feff8LEngine(Feff8LEngine.settings_from_config(section, absorber="Cu", edge="K"))


def test_the_engine_writes_each_structures_debye_card():
    (cold,) = cu_at([10], debye_temperature=315)
    (snap,) = cu_at([300], model="einstein", snapshots=1)
    eng = engine()
    debye = [line for line in eng.input_text(cold, 0, "c").splitlines() if "DEBYE" in line]
    assert debye == ["DEBYE 10 315"]
    assert "DEBYE" not in eng.input_text(snap, 0, "s")  # disorder already in the positions
    plain = cold.copy()
    plain.info = {}
    assert "DEBYE 200 315" in eng.input_text(plain, 0, "p")  # the config's card
    assert eng.settings.cards["DEBYE"] == [200, 315]  # the engine's own cards untouched


def run_cu(atoms, workdir, name):
    eng = engine()
    item = ItemInput(name, "s", 0, eng.input_text(atoms, 0, name), name)
    (workdir / name).mkdir()
    res = eng.run(item, workdir / name, timeout=300)
    assert res.status == "ok", (res.reason, res.detail)
    return res, read_path_sigma2(workdir / name / "chi.dat")


def test_cu_bulk_site_at_10_and_600_k_damps_as_the_sigma2_labels_say(tmp_path):
    cold, hot = cu_at([10, 600], debye_temperature=315)
    shells = ShellSettings.from_config({"windows": [{"element": "Cu", "r": [2.0, 3.05]}]})
    res_c, paths_c = run_cu(cold, tmp_path, "cold")
    res_h, paths_h = run_cu(hot, tmp_path, "hot")
    (p_c,), (p_h,) = paths_c, paths_h  # one single-scattering path: 12 Cu at a/√2
    assert (
        p_c["nlegs"] == 2
        and p_c["degeneracy"] == 12
        and p_c["reff"] == pytest.approx(2.5527, abs=1e-3)
    )
    # The labels agree with FEFF's own correlated-Debye sigma² (FEFF's Norman radius vs the
    # Wigner–Seitz estimate: about 1 %).
    for atoms, p in ((cold, p_c), (hot, p_h)):
        assert shell_labels(atoms, 0, shells)["sigma2_s1_Cu"] == pytest.approx(
            p["sigma2"], rel=0.03
        )
    # One path: the ratio of the two spectra's magnitudes is the change of the Debye–Waller
    # factor.  FEFF applies it with its complex photoelectron momentum, so the slope in k²
    # reads about 3 % less than the printed sigma² difference; 6 % is the tolerance.
    k = res_c.arrays["k"]
    np.testing.assert_allclose(res_h.arrays["k"], k)
    cold_chi = np.loadtxt(tmp_path / "cold" / "chi.dat")
    hot_chi = np.loadtxt(tmp_path / "hot" / "chi.dat")
    ok = (cold_chi[:, 0] > 3) & (cold_chi[:, 0] < 14)
    slope = np.polyfit(cold_chi[ok, 0] ** 2, np.log(hot_chi[ok, 2] / cold_chi[ok, 2]), 1)[0]
    d_feff = p_h["sigma2"] - p_c["sigma2"]
    assert -slope / 2 == pytest.approx(d_feff, rel=0.06)
    d_label = (
        shell_labels(hot, 0, shells)["sigma2_s1_Cu"] - shell_labels(cold, 0, shells)["sigma2_s1_Cu"]
    )
    assert d_label == pytest.approx(d_feff, rel=0.03)
    assert -slope / 2 == pytest.approx(d_label, rel=0.06)
    # And the full spectra differ: the hot one is weaker at high k.
    high = k > 10
    chi_c, chi_h = res_c.arrays["chi"], res_h.arrays["chi"]
    assert np.abs(chi_h[high]).max() < 0.3 * np.abs(chi_c[high]).max()
    assert 0.010 < d_label < 0.016  # Cu, θ 315 K: 0.0030 Å² at 10 K, 0.0178 Å² at 600 K


def test_read_path_sigma2_refuses_files_without_the_table(tmp_path):
    path = tmp_path / "chi.dat"
    path.write_text("# not feff\n 1.0 2.0\n")
    with pytest.raises(ValueError, match="no path table"):
        read_path_sigma2(path)
