"""Variants (strain, supercells, rattling) and the ChemEnv/bond-valence site labels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlxas.xanes.labels import (
    GEOMETRY_CLASSES,
    GeometrySettings,
    LabelError,
    site_labels,
    sites_labels,
    valences,
)
from mlxas.xanes.prototypes import build_structure, catalogue
from mlxas.xanes.variants import VariantSettings, rattled, snapshot, strained, supercell_for

warnings.filterwarnings("ignore", module="pymatgen")


def _compound(name: str):
    return next(c for c in catalogue((name.split("_", 1)[1],)).compounds if c.name == name)


@pytest.fixture(scope="module")
def mno():
    return build_structure(_compound("MnO_rock_salt"))


def test_labels_of_rock_salt_mno(mno):
    lab = site_labels(mno, 0)  # undecorated: oxidation states from BVAnalyzer
    assert lab["geometry"] == "octahedral" and lab["ce_symbol"] == "O:6"
    assert lab["geometry_index"] == GEOMETRY_CLASSES.index("octahedral")
    assert lab["cn"] == 6 and lab["r"] == pytest.approx(4.445 / 2, abs=1e-6)
    assert lab["csm"] == pytest.approx(0.0, abs=1e-6)
    assert lab["oxidation_state"] == 2.0


def test_labels_take_oxidation_states_from_decorated_species():
    comp = _compound("KMnO4_scheelite")
    s = build_structure(comp).copy()
    mn = next(i for i, site in enumerate(s) if site.specie.symbol == "Mn")
    assert valences(s)[mn] == 7.0  # BVAnalyzer, undecorated
    s.add_oxidation_state_by_element({"K": 1, "Mn": 7, "O": -2})
    lab = site_labels(s, mn)
    assert (lab["geometry"], lab["cn"], lab["oxidation_state"]) == ("tetrahedral", 4, 7.0)
    assert lab["r"] == pytest.approx(1.61, abs=1e-4)


def test_max_csm_sends_distorted_sites_to_other(mno):
    s = rattled(supercell_for(mno, 8.0), 0.15, np.random.default_rng(1))
    loose = site_labels(s, 0)
    assert loose["csm"] > 0.1 and loose["geometry"] == "octahedral"
    strict = site_labels(s, 0, GeometrySettings(max_csm=loose["csm"] / 2))
    assert strict["geometry"] == "other" and strict["ce_symbol"] == "O:6"


def test_anion_or_bad_index_is_refused(mno):
    o = next(i for i, site in enumerate(mno) if site.specie.symbol == "O")
    with pytest.raises(LabelError, match="not_a_cation"):
        site_labels(mno, o)
    with pytest.raises(LabelError, match="bad_index"):
        sites_labels(mno, [len(mno)])
    with pytest.raises(ValueError, match="angle_cutoff"):
        GeometrySettings(angle_cutoff=1.5)


def test_strain_is_green_lagrange_and_keeps_fractions(mno):
    e = np.array([0.01, -0.005, 0.02, 0.004, -0.006, 0.008])  # Voigt, engineering shears
    s = strained(mno, e)
    E = np.array(
        [[e[0], e[5] / 2, e[4] / 2], [e[5] / 2, e[1], e[3] / 2], [e[4] / 2, e[3] / 2, e[2]]]
    )
    # Green-Lagrange strain E = (FᵀF − I)/2, so det F = √det(I + 2E).
    assert s.volume / mno.volume == pytest.approx(np.sqrt(np.linalg.det(np.eye(3) + 2 * E)))
    assert np.allclose(s.frac_coords, mno.frac_coords)
    assert s.site_properties["role"] == mno.site_properties["role"]


def test_supercell_is_the_smallest_diagonal_one_wide_enough(mno):
    sc = supercell_for(mno, 9.0)  # a = 4.445 Å: 3 cells reach 13.3 Å, 2 only 8.9 Å
    assert len(sc) == 27 * len(mno)
    assert np.allclose(sc.lattice.abc, [3 * 4.445] * 3)


def test_rattling_has_the_set_rms_and_comes_from_the_seed(mno):
    base = supercell_for(mno, 20.0)
    a = rattled(base, 0.05, np.random.default_rng(7))
    b = rattled(base, 0.05, np.random.default_rng(7))
    d = a.cart_coords - base.cart_coords
    assert np.array_equal(a.cart_coords, b.cart_coords)
    assert np.sqrt(np.mean(d**2)) == pytest.approx(0.05, rel=0.05)
    assert a.site_properties["role"] == base.site_properties["role"]


def test_snapshots_are_reproducible_and_ideal_without_a_seed(mno):
    st = VariantSettings(strain=0.02, rattle=(0.03, 0.05), min_width=8.0)
    ideal = snapshot(mno, st, None)
    assert ideal.kind == "ideal" and ideal.structure == mno
    one, two = snapshot(mno, st, 11), snapshot(mno, st, 11)
    assert one.kind == "thermal" and 0.03 <= one.sigma <= 0.05
    assert np.array_equal(one.structure.cart_coords, two.structure.cart_coords)
    assert max(abs(v) for v in one.strain[:3]) <= 0.02
    assert not np.array_equal(
        snapshot(mno, st, 12).structure.cart_coords, one.structure.cart_coords
    )
