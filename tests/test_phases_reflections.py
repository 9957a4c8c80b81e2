"""The reflections engine: structure factors against hand calculation and gemmi, the fixed
reflection list, refusals and failures, featurize and targets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase import Atoms

from _phases_support import gemmi_structure_factors
from mlxas.engines import InputError, ItemInput, engine_class, get_engine
from mlxas.phases.reflection_list import box_lookup, reflection_list
from mlxas.phases.reflections import PhaseFeatures, ReflectionsEngine, ReflectionSettings


def _run(engine: ReflectionsEngine, atoms: Atoms, name: str = "x"):
    text = engine.input_text(atoms, None, name)
    return engine.run(ItemInput(name, name, 0, text, "hash"), None, 10.0)


def _pair(x=(0.13, 0.21, 0.34), cell=(5.0, 6.0, 7.0, 80.0, 95.0, 105.0), el="C"):
    """Two atoms related by the inversion at the origin: a P-1 crystal."""
    atoms = Atoms([el, el], scaled_positions=[x, [-v for v in x]], cell=cell, pbc=True)
    atoms.info["structure_id"] = "00000000000000ab"
    return atoms


def _reciprocal_d(cell_atoms: Atoms, hkl: np.ndarray) -> np.ndarray:
    """d-spacings from ASE's reciprocal cell (independent of cctbx)."""
    g = np.asarray(hkl) @ cell_atoms.cell.reciprocal()[:]  # 1/Å, without 2π
    return 1.0 / np.linalg.norm(g, axis=1)


def test_registered_under_its_name():
    assert engine_class("reflections") is ReflectionsEngine
    assert ReflectionsEngine.unit == "structure"


def test_two_atom_cell_matches_hand_calculation():
    """F(h) = 2 f_C(s) exp(-B s²) cos(2π h·x) with s = 1/(2d), f_C from cctbx's table."""
    from cctbx.eltbx import xray_scattering

    settings = ReflectionSettings(d_min=1.0, index_max=8, b_element_spread=0.0)
    atoms = _pair()
    eng = get_engine("reflections", settings)
    res = _run(eng, atoms)
    assert res.ok, res.detail
    hkl, amp, phase = res.arrays["hkl"], res.arrays["amplitude"], res.arrays["phase"]
    b = res.scalars["b_iso"]
    gauss = xray_scattering.n_gaussian_table_entry("C", 0, 0).gaussian()
    d = _reciprocal_d(atoms, hkl)
    s = 1.0 / (2.0 * d)
    x = np.array([0.13, 0.21, 0.34])
    f_hand = np.array(
        [
            2 * gauss.at_stol(si) * math.exp(-b * si**2) * math.cos(2 * math.pi * h @ x)
            for h, si in zip(hkl, s, strict=True)
        ]
    )
    f_engine = amp * np.cos(phase)  # real: phases are 0 or π
    assert np.allclose(f_engine, f_hand, atol=1e-6 * np.abs(f_hand).max())
    assert np.allclose(res.arrays["d_spacing"], d, rtol=1e-9)
    assert d.min() >= 1.0 - 1e-9


def test_structure_factors_agree_with_gemmi():
    """An independent library (gemmi, IT92 coefficients) on a random P-1 crystal."""
    rng = np.random.default_rng(3)
    x = rng.random((5, 3))
    els = ["C", "N", "O", "S", "Cl"]
    atoms = Atoms(
        els * 2,
        scaled_positions=np.vstack([x, -x]) % 1.0,
        cell=(7.1, 8.2, 9.3, 85, 100, 95),
        pbc=True,
    )
    atoms.info["structure_id"] = "0123456789abcdef"
    eng = get_engine("reflections", ReflectionSettings(d_min=1.2, index_max=8, table="it1992"))
    res = _run(eng, atoms)
    assert res.ok
    b = json.loads(eng.input_text(atoms, None, "x"))["b_iso"]["elements"]
    f_gemmi = gemmi_structure_factors(atoms, b, res.arrays["hkl"])
    f_ours = res.arrays["amplitude"] * np.exp(1j * res.arrays["phase"])
    assert np.abs(f_ours - f_gemmi).max() < 2e-3 * np.abs(f_gemmi).max()


def test_p1bar_list_is_the_friedel_half_of_the_box():
    hkl = reflection_list("P-1", 10)
    assert len(hkl) == (21**3 - 1) // 2 == 4630  # the published P-1 list
    seen = {tuple(h) for h in hkl}
    assert all(tuple(-x for x in h) not in seen for h in seen)
    assert np.abs(hkl).max() == 10 and (0, 0, 0) not in seen


def test_p21c_list_has_no_absences_and_one_of_each_orbit():
    hkl = reflection_list("P 1 21/c 1", 6)
    h, k, el = hkl.T
    assert not np.any((k == 0) & (el % 2 == 1))  # h0l: l = 2n
    assert not np.any((h == 0) & (el == 0) & (k % 2 == 1))  # 0k0: k = 2n
    # 2/m equivalents of (h,k,l): (-h,k,-l), (h,-k,l) and the Friedel mates
    orbits = {
        frozenset({(a, b, c), (-a, b, -c), (a, -b, c), (-a, -b, -c)}) for a, b, c in hkl.tolist()
    }
    assert len(orbits) == len(hkl)


def test_too_large_cell_is_refused_not_truncated():
    eng = get_engine("reflections", ReflectionSettings(d_min=1.0, index_max=8))
    atoms = _pair(cell=(9.5, 6.0, 7.0, 90, 90, 90))
    with pytest.raises(InputError) as err:
        eng.input_text(atoms, None, "big")
    assert err.value.reason == "cell_too_large" and "big" in str(err.value)


def test_non_centrosymmetric_crystal_fails_with_reason():
    atoms = Atoms(
        ["C", "O"],
        scaled_positions=[[0.1, 0.2, 0.3], [0.3, 0.25, 0.1]],
        cell=(5, 6, 7, 90, 90, 90),
        pbc=True,
    )
    res = _run(get_engine("reflections", ReflectionSettings(d_min=1.5, index_max=6)), atoms)
    assert not res.ok and res.reason == "not_centrosymmetric" and "P-1" in res.detail


def test_input_text_is_deterministic_and_b_is_per_element():
    import json

    eng = get_engine("reflections", ReflectionSettings())
    a = _pair()
    t1, t2 = eng.input_text(a, None, "x"), eng.input_text(a.copy(), None, "x")
    assert t1 == t2
    doc = json.loads(t1)
    lo, hi = ReflectionSettings().b_iso
    assert lo <= doc["b_iso"]["overall"] <= hi
    assert set(doc["b_iso"]["elements"]) == {"C"}


def test_featurize_places_reflections_on_the_fixed_list():
    settings = ReflectionSettings(d_min=1.5, index_max=6)
    eng = get_engine("reflections", settings)
    a1, a2 = _pair(), _pair(x=(0.3, 0.1, 0.2), cell=(6.0, 5.5, 8.0, 90, 100, 90), el="O")
    results = [_run(eng, a1, "a"), _run(eng, a2, "b")]
    feats = eng.featurize(results, PhaseFeatures())
    hkl_list = reflection_list(settings.space_group, settings.index_max)
    assert feats["e_value"].shape == (2, len(hkl_list))
    for i, (atoms, r) in enumerate(zip([a1, a2], results, strict=True)):
        inside = _reciprocal_d(atoms, hkl_list) >= 1.5
        assert np.array_equal(feats["mask"][i] > 0, inside)
        idx = box_lookup(settings.space_group, settings.index_max, r.arrays["hkl"])
        assert np.allclose(feats["amplitude"][i, idx], r.arrays["amplitude"], rtol=1e-6)
    m = feats["mask"] > 0
    assert abs(float((feats["e_value"][m] ** 2).mean()) - 1.0) < 0.2  # |E|² averages 1
    targets = eng.targets(results)
    f_real = results[0].arrays["amplitude"] * np.cos(results[0].arrays["phase"])
    idx = box_lookup(settings.space_group, settings.index_max, results[0].arrays["hkl"])
    assert np.array_equal(targets["sign"][0, idx] > 0.5, f_real > 0)
