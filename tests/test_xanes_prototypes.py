"""Prototype crystals: geometry against crystallography, and ChemEnv's view of each site."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlxas.xanes.labels import sites_labels
from mlxas.xanes.prototypes import (
    TRANSITION_METALS,
    PrototypeError,
    build_structure,
    catalogue,
    compound_valences,
    prototype,
    prototype_names,
    role_valences,
    substituted,
)

warnings.filterwarnings("ignore", module="pymatgen")


def _reference(name: str):
    return next(c for c in catalogue((name,)).compounds if c.origin == "reference")


def _by_name(name: str):
    return next(c for c in catalogue().compounds if c.name == name)


def _site(structure, role: str) -> int:
    return next(i for i, s in enumerate(structure) if s.properties["role"] == role)


def _bonds(structure, index: int, rmax: float) -> list[float]:
    return sorted(round(n.nn_distance, 3) for n in structure.get_neighbors(structure[index], rmax))


@pytest.mark.parametrize("name", prototype_names())
def test_chemenv_finds_the_known_coordination_of_every_prototype(name):
    """ChemEnv (real pymatgen) on the reference compound gives the prototype's geometry."""
    comp = _reference(name)
    s = build_structure(comp).copy()
    s.add_oxidation_state_by_site(list(compound_valences(comp)))
    expected = prototype(name)["geometry"]
    roles = list(comp.absorbers())
    assert roles, f"{comp.name} has no 3d-metal absorber"
    labels = sites_labels(s, [_site(s, r) for r in roles])
    assert {r: lab["geometry"] for r, lab in zip(roles, labels, strict=True)} == {
        r: expected[r] for r in roles
    }


def test_rock_salt_and_cuprite_bond_lengths_follow_the_lattice():
    mno = build_structure(_by_name("MnO_rock_salt"))
    assert _bonds(mno, _site(mno, "M"), 2.5) == [pytest.approx(4.445 / 2, abs=1e-3)] * 6
    cu2o = build_structure(_by_name("Cu2O_cuprite"))
    # Cu at 4b, O at 2a: Cu-O = a·√3/4, two O on a line through Cu.
    assert _bonds(cu2o, _site(cu2o, "M"), 2.2) == [pytest.approx(4.2696 * 3**0.5 / 4, abs=1e-3)] * 2


def test_cu3n_and_ybco6_copper_sites_follow_their_cells():
    cu3n = build_structure(_by_name("Cu3N_anti_reo3"))
    # anti-ReO3: Cu at 3d between two N at a/2 on a cube edge.
    assert _bonds(cu3n, _site(cu3n, "M"), 2.2) == [pytest.approx(3.815 / 2, abs=1e-3)] * 2
    y = build_structure(_by_name("Ba2YCu3O6_ybco6"))
    a, c = 3.8544, 11.8175
    # Cu1 at z = 0: apical O4 at +-0.1520 c, chain sites empty.
    assert _bonds(y, _site(y, "C1"), 2.2) == [pytest.approx(0.1520 * c, abs=1e-3)] * 2
    # Cu2 at z = 0.3607: four plane O2 (z = 0.3790) and the apical O4 below.
    plane = ((a / 2) ** 2 + ((0.3790 - 0.3607) * c) ** 2) ** 0.5
    apex = (0.3607 - 0.1520) * c
    assert _bonds(y, _site(y, "C2"), 2.6) == pytest.approx([plane] * 4 + [apex], abs=1e-3)


def test_v2o5_has_the_published_vanadyl_square_pyramid():
    s = build_structure(_by_name("V2O5_v2o5"))
    # Enjalbert & Galy (1986): 1.58 (vanadyl), 1.78, 1.88 x2, 2.02, and 2.79 across the gap.
    assert _bonds(s, _site(s, "M"), 2.9) == pytest.approx(
        [1.58, 1.78, 1.88, 1.88, 2.02, 2.79], abs=0.015
    )


def test_spinels_have_the_right_cells_and_valences():
    zn = _by_name("ZnCr2O4_spinel")
    s = build_structure(zn)
    assert s.composition.reduced_formula == "ZnCr2O4" and len(s) == 56  # Z = 8
    assert role_valences(zn) == {"A": 2.0, "B": 3.0, "X": -2.0}
    inv = _by_name("Fe2NiO4_inverse_spinel")
    p = build_structure(inv)
    roles = p.site_properties["role"]
    assert len(p) == 14 and roles.count("B") == roles.count("B2") == 2
    assert role_valences(inv)["A"] == 3.0 and role_valences(inv)["B"] == 2.0


def test_bond_card_sets_the_oxoanion_size():
    s = build_structure(_by_name("KMnO4_scheelite"))
    assert _bonds(s, _site(s, "B"), 2.0) == [pytest.approx(1.61, abs=1e-4)] * 4
    assert role_valences(_by_name("KMnO4_scheelite"))["B"] == 7.0


def test_substitution_scales_the_lattice_by_shannon_radii():
    from pymatgen.core import Species

    ref = _by_name("ZnS_zinc_blende")
    fe = substituted(ref, "M", "Fe")
    rs = Species("S", -2).ionic_radius
    ratio = (Species("Fe", 2).ionic_radius + rs) / (Species("Zn", 2).ionic_radius + rs)
    assert fe.lattice[0] == pytest.approx(5.409 * ratio)  # a binary: the whole lattice
    assert fe.origin == "substituted" and fe.parent == ref.name and fe.hypothetical
    assert build_structure(fe).composition.reduced_formula == "FeS"


def test_catalogue_covers_the_dataset_scope():
    cat = catalogue()
    absorbers = {el for c in cat.compounds for el in c.absorbers().values()}
    assert absorbers == set(TRANSITION_METALS)
    assert len({c.prototype for c in cat.compounds}) >= 10
    names = [c.name for c in cat.compounds]
    assert len(names) == len(set(names))
    anions = {el for c in cat.compounds for el in c.elements.values()} & {"O", "S", "F"}
    assert anions == {"O", "S", "F"}


def test_bad_prototype_input_is_refused_with_its_name():
    with pytest.raises(PrototypeError, match="unknown prototype 'nope'"):
        prototype("nope")
    bad = _by_name("MnO_rock_salt").__class__(
        prototype="rutile", species=(("M", "Ti"), ("X", "O")), lattice=(4.5,)
    )
    with pytest.raises(PrototypeError, match="tetragonal lattice takes 2"):
        build_structure(bad)
    assert np.isfinite(_by_name("MnO_rock_salt").lattice[0])
