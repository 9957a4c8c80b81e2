"""Random molecular crystals: reproducible, symmetric, chemically sensible, with provenance."""

from __future__ import annotations

import numpy as np
import pytest
import spglib
from ase.geometry import get_distances

from mlxas.phases.crystals import CrystalError, CrystalSettings, has_symmetry, random_crystal
from mlxas.provenance import structure_hash


@pytest.fixture(scope="module")
def p1bar():
    return [random_crystal(CrystalSettings(seed=5), i) for i in range(3)]


def test_a_crystal_does_not_depend_on_the_crystals_made_before_it(p1bar):
    alone = random_crystal(CrystalSettings(seed=5), 2)
    assert alone.info["structure_id"] == p1bar[2].info["structure_id"]


def test_same_seed_and_index_give_the_same_crystal(p1bar):
    again = random_crystal(CrystalSettings(seed=5), 1)
    assert again.info["structure_id"] == p1bar[1].info["structure_id"]
    assert np.allclose(again.positions, p1bar[1].positions)
    other = random_crystal(CrystalSettings(seed=6), 1)
    assert other.info["structure_id"] != p1bar[1].info["structure_id"]


def test_provenance_and_id(p1bar):
    for a in p1bar:
        assert a.info["structure_id"] == structure_hash(
            a.get_chemical_symbols(), a.positions, a.cell[:], a.pbc
        )
        assert "pyxtal" in a.info["origin"] and "seed=5" in a.info["origin"]
        assert a.info["space_group"] == "P-1" and a.info["z"] in (2, 4)


def test_spglib_finds_p1bar_with_inversion_at_the_origin(p1bar):
    for a in p1bar:
        cell = (a.cell[:], a.get_scaled_positions(), a.numbers)
        ds = spglib.get_symmetry_dataset(cell, symprec=1e-3)
        assert ds.number >= 2  # at least P-1 (a special position may add symmetry)
        inverted = -a.positions  # inversion through the origin
        d = get_distances(inverted, a.positions, cell=a.cell, pbc=True)[1]
        assert d.min(axis=1).max() < 1e-3
        assert has_symmetry(a, "P -1")


def test_chemically_sensible(p1bar):
    settings = CrystalSettings()
    for a in p1bar:
        assert set(a.get_chemical_symbols()) <= {"C", "N", "O", "H", "S", "Cl"}
        d = a.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        assert d.min() > 0.9  # no overlapping atoms (shortest bond: C-H ~1.09 Å)
        heavy = a.numbers > 1
        dh = d[np.ix_(heavy, heavy)]
        assert dh.min() > 1.1  # shortest heavy-atom bond (C≡N 1.16 Å)
        assert max(a.cell.lengths()) <= settings.max_edge


def test_p21c_crystal_and_its_restricted_phases():
    from mlxas.engines import ItemInput
    from mlxas.phases.reflections import ReflectionsEngine, ReflectionSettings

    a = random_crystal(CrystalSettings(space_group=14, max_edge=16.0, max_heavy_atoms=12), 0)
    assert has_symmetry(a, "P 1 21/c 1") and a.info["z"] in (4, 8)
    eng = ReflectionsEngine(ReflectionSettings(space_group="P 1 21/c 1", d_min=1.5, index_max=11))
    text = eng.input_text(a, None, "p21c")
    res = eng.run(ItemInput("p21c", "p21c", 0, text, "h"), None, 10.0)
    assert res.ok, res.detail  # every phase at 0 or π: the engine checks it
    _h, k, l_ = res.arrays["hkl"].T
    assert not np.any((k == 0) & (l_ % 2 == 1))
    assert (
        spglib.get_symmetry_dataset(
            (a.cell[:], a.get_scaled_positions(), a.numbers), symprec=1e-3
        ).number
        >= 14
    )


def test_bad_settings_are_refused():
    with pytest.raises(CrystalError, match="space_group"):
        CrystalSettings(space_group=1)
    with pytest.raises(CrystalError, match="unknown molecules"):
        CrystalSettings(molecules=("C6H6", "unobtainium"))
    with pytest.raises(CrystalError, match="attempts"):
        random_crystal(CrystalSettings(max_edge=3.0, max_attempts=2), 0)
